"""Strict JSON (codex-exec.md §5 step 1): RFC 8259 only, no duplicate member
names at any depth, no NaN/Infinity, no lone surrogates, valid UTF-8."""

import json


class NotJson(Exception):
    pass


def _pairs(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise NotJson("duplicate member name")
        obj[k] = v
    return obj


def _no_constant(name):
    raise NotJson("%s is not JSON" % name)


def _check_strings(value):
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            v.encode("utf-8")  # raises on a lone surrogate
        elif isinstance(v, dict):
            for k, x in v.items():
                k.encode("utf-8")
                stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)


def loads(data):
    """Parse bytes or str strictly; raise NotJson on anything RFC 8259 refuses."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
        _check_strings(value)
        return value
    except NotJson:
        raise
    except (ValueError, UnicodeError, RecursionError, TypeError) as e:
        raise NotJson(type(e).__name__) from None
