//! Properties of the ref parser (spec/secret-ref.md).

use proptest::prelude::*;
use vaultref::{ErrorCode, SecretRef};

/// A segment per the grammar: segchars, never `.` or `..`.
fn segment() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,12}".prop_filter("dot segments are traversal", |s| s != "." && s != "..")
}

fn valid_ref() -> impl Strategy<Value = String> {
    (
        segment(),
        prop::collection::vec(segment(), 1..6),
        prop::option::of(1u32..=u32::MAX),
        "[A-Za-z0-9._-]{1,16}",
    )
        .prop_map(|(mount, path, version, field)| {
            let query = version.map(|v| format!("?version={v}")).unwrap_or_default();
            format!("vault://{mount}/{}{query}#{field}", path.join("/"))
        })
}

/// Bytes outside the ref alphabet (R3).
fn forbidden_byte() -> impl Strategy<Value = u8> {
    any::<u8>().prop_filter("outside the alphabet", |b| {
        !(b.is_ascii_alphanumeric() || b"._-/:?#=".contains(b))
    })
}

proptest! {
    #[test]
    fn valid_refs_round_trip_through_display(s in valid_ref()) {
        let parsed = SecretRef::parse(&s).expect("generated refs are valid");
        prop_assert_eq!(parsed.to_string(), s.clone());
        // Parsing the display again gives the same ref: one spelling per ref.
        prop_assert_eq!(SecretRef::parse(&parsed.to_string()).unwrap(), parsed);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,600}") {
        let _ = SecretRef::parse(&s);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..600), max in 0usize..600) {
        let _ = SecretRef::parse_bytes(&b, max);
    }

    #[test]
    fn near_valid_bytes_never_panic(s in valid_ref(), at in any::<prop::sample::Index>(),
                                    b in prop::sample::select(b"/:?#=.".to_vec())) {
        // Alphabet bytes in odd places exercise the structural parser, not the pre-scan.
        let mut bytes = s.into_bytes();
        let i = at.index(bytes.len() + 1);
        bytes.insert(i, b);
        let _ = SecretRef::parse_bytes(&bytes, 512);
    }

    #[test]
    fn inserting_a_forbidden_byte_is_rejected_at_that_byte(
        s in valid_ref(), at in any::<prop::sample::Index>(), b in forbidden_byte()
    ) {
        let mut bytes = s.into_bytes();
        let i = at.index(bytes.len() + 1);
        bytes.insert(i, b);
        let err = SecretRef::parse_bytes(&bytes, 512).unwrap_err();
        prop_assert_eq!(err.code(), ErrorCode::RefInvalidChar);
        prop_assert_eq!(err.offset(), Some(i));
    }

    #[test]
    fn a_dot_segment_anywhere_is_traversal(
        mount in segment(), path in prop::collection::vec(segment(), 1..5),
        at in any::<prop::sample::Index>(), dots in prop::sample::select(vec![".", ".."]),
        replace in any::<bool>(),
    ) {
        let mut path = path;
        let i = at.index(path.len());
        if replace { path[i] = dots.to_string(); } else { path.insert(i, dots.to_string()); }
        let s = format!("vault://{mount}/{}#f", path.join("/"));
        let err = SecretRef::parse(&s).unwrap_err();
        prop_assert_eq!(err.code(), ErrorCode::RefTraversal);
        let offset = 8 + mount.len() + 1 + path[..i].iter().map(|p| p.len() + 1).sum::<usize>();
        prop_assert_eq!(err.offset(), Some(offset));
    }

    #[test]
    fn a_dot_mount_is_traversal_whatever_follows(dots in prop::sample::select(vec![".", ".."]), s in valid_ref()) {
        let rest = &s[s.find('/').unwrap() + 2..];
        let rest = &rest[rest.find('/').unwrap()..];
        let r = format!("vault://{dots}{rest}");
        let err = SecretRef::parse(&r).unwrap_err();
        prop_assert_eq!((err.code(), err.offset()), (ErrorCode::RefTraversal, Some(8)));
    }

    #[test]
    fn doubling_a_slash_in_the_path_is_an_empty_segment(s in valid_ref(), at in any::<prop::sample::Index>()) {
        let path_start = 8 + s[8..].find('/').unwrap() + 1;
        let slashes: Vec<usize> = s.match_indices('/').map(|(i, _)| i).filter(|&i| i >= path_start).collect();
        prop_assume!(!slashes.is_empty());
        let i = slashes[at.index(slashes.len())];
        let mut bytes = s.clone().into_bytes();
        bytes.insert(i, b'/');
        let err = SecretRef::parse_bytes(&bytes, 512).unwrap_err();
        prop_assert_eq!((err.code(), err.offset()), (ErrorCode::RefEmptySegment, Some(i + 1)));
    }
}
