#!/usr/bin/env python3
"""pyvaultref: an independent Python implementation of the vaultref conformance
protocol (spec/protocol.md), written from the specification alone.

stdin: one JSON request per line; stdout: one JSON reply per line; stderr:
diagnostics, every byte through the redactor."""

import hashlib
import hmac
import json
import os
import shutil
import sys
import threading

sys.dont_write_bytecode = True  # P6: write nothing outside work_dir/temp_dir (no __pycache__ here)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import payload as payloads  # noqa: E402
from redact import Redactor, SecretTooShort  # noqa: E402
from refs import Policy, PolicyError, RefError  # noqa: E402
from vault import ConfigError, Resolver, VaultError  # noqa: E402
from worker import Worker  # noqa: E402

PROFILES = ["refs", "payload", "resolve", "auth", "lifecycle", "worker", "degraded", "hostile"]


class Adapter:
    def __init__(self):
        self.redactor = Redactor()      # every secret this process has seen
        self.out_lock = threading.Lock()
        self.config = {}
        self.resolver = None
        self.worker = None
        self.key = None
        self.temp_dir = None

    # -- output -----------------------------------------------------------------

    def log(self, text):
        line = self.redactor.scrub(str(text)).replace("\n", " ")
        with self.out_lock:
            sys.stderr.write("pyvaultref: %s\n" % line)
            sys.stderr.flush()

    def _scrub_reply(self, value, key=None):
        """Every string of a reply passes the redactor (ids and codes are safe)."""
        if isinstance(value, dict):
            return {k: self._scrub_reply(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub_reply(v) for v in value]
        if isinstance(value, str) and key not in ("reply", "code", "fingerprint", "commit", "outcome"):
            return self.redactor.scrub(value)
        return value

    def send(self, reply):
        line = json.dumps(self._scrub_reply(reply), ensure_ascii=True)
        with self.out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def _remember(self, secret):
        try:
            self.redactor.register(secret, min_len=4)
        except SecretTooShort:
            pass

    # -- operations -------------------------------------------------------------

    def hello(self, req):
        return {"protocol": 1, "profiles": PROFILES,
                "implementation": {"name": "pyvaultref", "version": "0.1.0", "language": "python",
                                   "notes": "independent implementation from spec/ only; stdlib Python"}}

    def configure(self, req):
        self.config = req
        self.temp_dir = req.get("temp_dir")
        for d in (req.get("work_dir"), req.get("temp_dir")):
            if isinstance(d, str):
                os.makedirs(d, exist_ok=True)
        key = req.get("fingerprint_key")
        if key is not None:
            try:
                raw = bytes.fromhex(key.strip())
            except (ValueError, AttributeError):
                raw = b""
            if len(raw) < 16:
                return _failed("config_invalid", "fingerprint_key must be at least 16 bytes of hex")
            self.key = raw
        if req.get("ref_policy") is not None:
            try:
                Policy(req["ref_policy"])
            except PolicyError as e:
                return _failed("config_invalid", str(e))
        if req.get("vault") is not None:
            try:
                self.resolver = Resolver(req["vault"], log=self.log, on_token=self._remember)
            except ConfigError as e:
                return _failed("config_invalid", str(e))
        self.worker = Worker(req, self.resolver, self.log, self.redactor)
        return {"outcome": "configured"}

    def check_ref(self, req):
        if "input_hex" in req:
            try:
                data = bytes.fromhex(req["input_hex"])
            except (ValueError, TypeError):
                return None
        else:
            data = req.get("input", "").encode("utf-8", "surrogatepass")
        ctx = req.get("context") or {}
        try:
            policy = Policy(req.get("policy"))
        except PolicyError as e:
            return {"valid": False, "code": "config_invalid", "offset": None, "message": str(e)}
        try:
            ref = policy.check(data, ctx.get("repository"), ctx.get("worker_id"))
        except RefError as e:
            return {"valid": False, "code": e.code, "offset": e.offset, "message": e.message}
        return {"valid": True, "ref": ref.as_json()}

    def check_payload(self, req):
        errors, summary = payloads.validate(job=req.get("job"), job_text=req.get("job_text"),
                                            options=req.get("options"))
        if errors:
            return {"valid": False, "errors": errors}
        return {"valid": True, "summary": summary}

    def resolve(self, req):
        job_id = req.get("job_id") or ""
        if self.resolver is None:
            return _failed("vault_not_configured", "no Vault settings (job %s)" % job_id)
        try:
            policy = Policy(self.config.get("ref_policy"))
            ref = policy.check(str(req.get("ref", "")).encode("utf-8", "surrogatepass"),
                               payloads.repository_slug(req.get("repository")), self.config.get("worker_id"))
        except PolicyError:
            return _failed("config_invalid", "the ref policy cannot be built")
        except RefError as e:
            return _failed(e.code, "%s (job %s)" % (e.message, job_id))
        try:
            value, _doc = self.resolver.read(ref, job_id)
        except VaultError as e:
            self.log("resolve %s for job %s: %s" % (ref.format(), job_id, e.code))
            return _failed(e.code, e.message)
        self._remember(value)
        if self.key is None:
            return _failed("config_invalid", "no fingerprint_key configured")
        digest = hmac.new(self.key, value.encode("utf-8"), hashlib.sha256).hexdigest()
        del value
        return {"outcome": "resolved", "fingerprint": "hmac-sha256:" + digest}

    def run_job(self, req):
        if self.worker is None:
            self.worker = Worker({}, None, self.log, self.redactor)
        return self.worker.run_job(str(req.get("job_id", "")), req.get("job"), req.get("action"))

    def shutdown(self):
        """§3.7: clear secret material and remove what we wrote to temp_dir."""
        if self.resolver is not None:
            self.resolver.shutdown()
        if isinstance(self.temp_dir, str) and os.path.isdir(self.temp_dir):
            for name in os.listdir(self.temp_dir):
                path = os.path.join(self.temp_dir, name)
                if name.startswith("job-"):
                    shutil.rmtree(path, ignore_errors=True)
        self.key = None

    # -- the loop ---------------------------------------------------------------

    def serve(self):
        ops = {"hello": self.hello, "configure": self.configure, "check_ref": self.check_ref,
               "check_payload": self.check_payload, "resolve": self.resolve, "run_job": self.run_job}
        for raw in sys.stdin.buffer:
            try:
                req = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeError):
                self.log("a request line that is not JSON was ignored")
                continue
            if not isinstance(req, dict):
                continue
            rid, op = req.get("id", 0), req.get("op")
            if op == "shutdown":
                self.send({"id": rid, "reply": "shutdown"})
                self.shutdown()
                return
            handler = ops.get(op)
            if handler is None:
                self.send({"id": rid, "reply": "unsupported", "op": str(op),
                           "message": "this implementation does not know this operation"})
                continue
            try:
                result = handler(req)
            except Exception as e:  # a bug: answer `error`, stay usable (P8)
                self.log("%s failed: %s" % (op, type(e).__name__))
                self.send({"id": rid, "reply": "error", "message": "internal error (%s)" % type(e).__name__})
                continue
            if result is None:
                self.send({"id": rid, "reply": "error", "message": "malformed request"})
            else:
                self.send(dict({"id": rid, "reply": op}, **result))
        self.shutdown()  # end of stdin: as for shutdown


def _failed(code, message):
    return {"outcome": "failed", "code": code, "message": message}


if __name__ == "__main__":
    Adapter().serve()
