"""Content Credentials: the file's C2PA manifest store, read and validated with the official
bindings (`c2pa-python`, the `provenance` extra), read-only and offline.

Offline means: no remote manifest is fetched (`verify.remote_manifest_fetch`), no OCSP
responder is asked (`verify.ocsp_fetch`), no host is allowed (`core.allowed_network_hosts`)
and trust is checked only against anchors the caller passes (none by default). So a store
whose signature and hashes hold is `unverified` unless its signer chains to such an anchor:
we can say the file is unchanged since it was signed, not who the signer really is.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, BinaryIO

from unmask.provenance.result import MAX_LIST, MAX_MANIFESTS, Manifest, clip
from unmask.provenance.vocab import source_type

# Failure codes about who signed, not about the file: without a trust list (or OCSP)
# offline, these say "unverified", never "invalid".
TRUST_CODES = frozenset(
    {
        "signingCredential.untrusted",
        "signingCredential.ocsp.skipped",
        "signingCredential.ocsp.inaccessible",
        "signingCredential.ocsp.unknown",
        "timeStamp.untrusted",
    }
)
# c2pa errors that mean "a store is there and it is broken" (else: the file is unreadable)
_BROKEN_STORE = frozenset(
    {
        "Assertion",
        "AssertionNotFound",
        "Decoding",
        "Encoding",
        "Json",
        "Manifest",
        "ResourceNotFound",
        "Signature",
        "Verify",
    }
)
_WORDS = {
    "Hash.mismatch": "hash mismatch: the file changed after it was signed",
    "claimSignature.mismatch": "signature mismatch: the claim was altered or forged",
    "hashedURI.mismatch": "an assertion was altered after signing",
    "signingCredential.expired": "the signing certificate had expired",
    "signingCredential.revoked": "the signing certificate was revoked",
    "signingCredential.invalid": "the signing certificate is not valid for signing",
}


def settings(trust_anchors: str | None = None) -> dict[str, Any]:
    """The c2pa settings: validate everything the file carries, fetch nothing."""
    out: dict[str, Any] = {
        "verify": {
            "verify_after_reading": True,
            "verify_trust": True,
            "verify_timestamp_trust": True,
            "ocsp_fetch": False,
            "remote_manifest_fetch": False,
        },
        "core": {
            "allowed_network_hosts": [],
            "decode_identity_assertions": False,
            "max_decompressed_manifest_size_in_mb": 16,
        },
    }
    if trust_anchors:
        out["trust"] = {"trust_anchors": trust_anchors}
    return out


# Read/seek calls c2pa may make on one file. c2pa reads through Python callbacks, about 12
# per container chunk: a normal image takes tens, a 34 MB PNG of 8 KB IDATs 6 600, while a
# 20 MB upload of empty chunks would take millions (about 20 us each). Past the budget the
# read fails and the result says why.
MAX_STREAM_OPS = 200_000


class _Budgeted:
    """A read-only view of a binary file that refuses calls past `MAX_STREAM_OPS`."""

    def __init__(self, fp: BinaryIO) -> None:
        self.fp, self.ops, self.spent = fp, 0, False

    def _count(self) -> None:
        self.ops += 1
        if self.ops > MAX_STREAM_OPS:
            self.spent = True
            raise OSError("read budget spent")

    def readinto(self, buf: Any) -> int:
        self._count()
        return self.fp.readinto(buf)

    def read(self, n: int = -1) -> bytes:
        self._count()
        return self.fp.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        self._count()
        return self.fp.seek(offset, whence)

    def tell(self) -> int:
        return self.fp.tell()

    def write(self, data: bytes) -> int:
        raise OSError("read-only")  # reading never writes: c2pa is handed no way to

    def flush(self) -> None:
        pass


_CONTEXTS: dict[tuple[int, str], Any] = {}
_LOCK = threading.Lock()


def _context(c2pa: Any, trust_anchors: str | None) -> Any:
    """One c2pa Context per process and trust setting (readers share it; per process
    because a forked child cannot use its parent's native handles)."""
    key = (os.getpid(), trust_anchors or "")
    with _LOCK:
        ctx = _CONTEXTS.get(key)
        if ctx is None:
            ctx = _CONTEXTS[key] = c2pa.Context.from_dict(settings(trust_anchors))
        return ctx


def read_store(
    fp: BinaryIO, trust_anchors: str | None = None, absent: bool = False
) -> tuple[str, str, str, tuple[Manifest, ...]]:
    """(status, reason, c2pa state, manifests) of the store in `fp`; never raises.
    `absent`: the caller read the container's headers through and found no place a store
    could be (no APP11 in a JPEG, no caBX chunk in a PNG): c2pa is not run."""
    try:
        import c2pa
    except ImportError:
        return "unchecked", "pip install 'unmask[provenance]'", "not installed", ()
    if absent:
        return "none", "", "read", ()
    stream = _Budgeted(fp)
    try:
        fp.seek(0)
        reader = c2pa.Reader.try_create(None, stream, None, _context(c2pa, trust_anchors))
        if reader is None:
            return "none", "", "read", ()
        with reader:
            store = json.loads(reader.json())
    except Exception as exc:  # C2paError, or a bug in the bindings: one line, no crash
        if stream.spent:
            return (
                "error",
                f"not checked: over {MAX_STREAM_OPS} reads (too many chunks)",
                "read",
                (),
            )
        if isinstance(exc, c2pa.C2paError):
            return _from_error(exc)
        return "error", f"{type(exc).__name__}: {exc}", "read", ()
    try:
        status, reason = judge(store)
        return status, reason, "read", manifests(store)
    except Exception as exc:  # an unexpected JSON shape
        return "error", f"unexpected manifest JSON ({type(exc).__name__}: {exc})", "read", ()


def _from_error(exc: Exception) -> tuple[str, str, str, tuple[Manifest, ...]]:
    # the native library says "<Kind>: <what>"; the bindings' class is the fallback
    text = str(exc).strip()
    head, sep, what = text.partition(": ")
    kind = head if sep and head.isalpha() else type(exc).__name__.lstrip("_").removeprefix("C2pa")
    message = clip(what if sep and head.isalpha() else text or kind, 160)
    if kind == "NotSupported":  # a format C2PA does not carry (BMP, AVI...)
        return "none", "", "unsupported format", ()
    if kind.startswith("Remote"):  # the file names a manifest URL: nothing is fetched
        return "unverified", f"remote manifest not fetched (offline): {message}", "read", ()
    return ("invalid" if kind in _BROKEN_STORE else "error"), message, "read", ()


def judge(store: dict[str, Any]) -> tuple[str, str]:
    """(status, reason) from c2pa's validation of the active manifest."""
    state = store.get("validation_state")
    active = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = active.get("failure") if "failure" in active else store.get("validation_status")
    codes = [
        (str(f.get("code", "")), str(f.get("explanation", "")))
        for f in failures or []
        if isinstance(f, dict)
    ]
    fatal = [c for c in codes if c[0] not in TRUST_CODES]
    if fatal or state == "Invalid":
        return "invalid", _reason(*fatal[0]) if fatal else "c2pa says the store is invalid"
    if state == "Trusted":
        return "valid", ""
    if any(code == "signingCredential.untrusted" for code, _ in codes):
        return "unverified", "signer not on a trust list; checked offline"
    return "unverified", "trust not established offline"


def _reason(code: str, explanation: str) -> str:
    for tail, words in _WORDS.items():  # dataHash, bmffHash, boxesHash... mismatch
        if code.endswith(tail):
            return f"{words} [{code}]"
    return f"{code}: {explanation}" if explanation else code


def manifests(store: dict[str, Any]) -> tuple[Manifest, ...]:
    """The active manifest, then its ingredients' manifests (breadth first, each once:
    a store whose ingredients refer back in a loop ends)."""
    table = store.get("manifests") or {}
    queue = [(store.get("active_manifest"), "active")]
    seen: set[str] = set()
    out: list[Manifest] = []
    while queue and len(out) < MAX_MANIFESTS:
        label, role = queue.pop(0)
        if not isinstance(label, str) or label in seen or not isinstance(table.get(label), dict):
            continue
        seen.add(label)
        m = table[label]
        out.append(_manifest(label, role, m))
        for ing in (m.get("ingredients") or [])[:MAX_LIST]:
            if isinstance(ing, dict):
                queue.append((ing.get("active_manifest"), clip(ing.get("relationship") or "", 20)))
    return tuple(out)


def _manifest(label: str, role: str, m: dict[str, Any]) -> Manifest:
    sig = m.get("signature_info") or {}
    actions: list[str] = []
    sources: list[str] = []
    agents: list[str] = []
    for a in m.get("assertions") or []:
        if not (isinstance(a, dict) and str(a.get("label", "")).startswith("c2pa.actions")):
            continue
        for act in ((a.get("data") or {}).get("actions") or [])[:MAX_LIST]:
            if not isinstance(act, dict):
                continue
            _add(actions, act.get("action"))
            if act.get("digitalSourceType"):
                _add(sources, source_type(act["digitalSourceType"]))
            agent = act.get("softwareAgent")
            _add(agents, agent.get("name") if isinstance(agent, dict) else agent)
    return Manifest(
        label=clip(label, 120),
        role=role or "componentOf",
        claim_generator=_claim_generator(m),
        signer=clip(sig.get("common_name") or sig.get("issuer") or "", 120),
        issuer=clip(sig.get("issuer") or "", 120),
        signed_at=clip(sig.get("time") or "", 40),
        actions=tuple(actions),
        source_types=tuple(sources),
        agents=tuple(agents),
    )


def _add(items: list[str], value: Any) -> None:
    if isinstance(value, str) and value.strip() and len(items) < MAX_LIST:
        value = clip(value, 120)
        if value not in items:
            items.append(value)


def _claim_generator(m: dict[str, Any]) -> str:
    info = m.get("claim_generator_info")
    if isinstance(info, list) and info and isinstance(info[0], dict):
        name, version = info[0].get("name") or "", info[0].get("version") or ""
        return clip(f"{name} {version}".strip(), 120)
    return clip(m.get("claim_generator") or "", 120)
