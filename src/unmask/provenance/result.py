"""What a file says about where it came from, as one frozen value per file.

`Provenance.status` is about the C2PA manifest store (Content Credentials):
    none        no manifest store in the file (or a format C2PA cannot carry)
    valid       integrity intact (signature, hashes) and the signer chains to a trust anchor
                the caller supplied
    unverified  integrity intact, but who signed cannot be established offline (the signer
                is on no trust list we have; nothing is fetched); or the manifest is remote
    invalid     the store is there but fails: hash mismatch (the file changed after signing),
                bad signature, malformed or truncated manifest; `reason` says which
    error       the file could not be read for C2PA at all; `reason` says why
    unchecked   c2pa-python is not installed (`c2pa`: "not installed")
`hints` come from unsigned metadata (EXIF, XMP, IPTC, PNG text): anyone can write or strip
them, so they are reported, never weighed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from unmask.provenance.vocab import CAPTURE, COMPOSITE, GENERATED, describe_source

STATUSES = ("none", "valid", "unverified", "invalid", "error", "unchecked")

# Bounds: whatever a file holds, a result stays small.
MAX_VALUE = 200  # characters kept of one metadata value
MAX_HINTS = 32
MAX_MANIFESTS = 8  # the active manifest and its ingredients' manifests
MAX_LIST = 16  # actions, source types, agents per manifest
MAX_REASON = 200
MAX_SUMMARY = 240


def clip(text: object, n: int = MAX_VALUE) -> str:
    """One line of at most `n` characters (control characters become spaces)."""
    s = "".join(c if c.isprintable() else " " for c in str(text)[: 4 * n]).strip()
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "\u2026"


@dataclass(frozen=True)
class Hint:
    """One metadata field worth reporting: where it came from, its (clipped) value, and
    what it suggests: kind "generator" | "source_type" | "editor" | "camera" | "c2pa_remote"
    | "text" (recorded, not interpreted), with a short `note` (e.g. "Stable Diffusion")."""

    field: str  # "<png|exif|xmp|iptc|jpeg|gif>:<name>", e.g. "png:parameters"
    value: str
    kind: str = "text"
    note: str = ""

    def label(self) -> str:
        src, _, name = self.field.partition(":")
        return f"{src.upper()} {name}" if name else src.upper()


@dataclass(frozen=True)
class Manifest:
    """One C2PA manifest of the store: the active one, then its ingredients' (`role`:
    "active" | "parentOf" | "componentOf" | "inputTo")."""

    label: str
    role: str = "active"
    claim_generator: str = ""
    signer: str = ""  # the signing certificate's common name, else its organisation
    issuer: str = ""
    signed_at: str = ""
    actions: tuple[str, ...] = ()  # e.g. ("c2pa.created", "c2pa.edited")
    source_types: tuple[str, ...] = ()  # short IPTC names, e.g. ("trainedAlgorithmicMedia",)
    agents: tuple[str, ...] = ()  # softwareAgent of the actions

    def what(self) -> str:
        """A few words: what this manifest says happened."""
        for group in (GENERATED, COMPOSITE):
            hit = next((s for s in self.source_types if s in group), None)
            if hit:
                return f"{describe_source(hit)} ({hit})"
        if self.source_types:
            return describe_source(self.source_types[0])
        if "c2pa.edited" in self.actions:
            return "edited"
        if "c2pa.created" in self.actions:
            return "created"
        return "signed"


@dataclass(frozen=True)
class Provenance:
    status: str = "none"
    reason: str = ""
    c2pa: str = "read"  # "read" | "not installed" | "unsupported format" | "off"
    manifests: tuple[Manifest, ...] = ()
    hints: tuple[Hint, ...] = ()
    notes: tuple[str, ...] = ()  # limits reached, parts not read

    @property
    def active(self) -> Manifest | None:
        return self.manifests[0] if self.manifests and self.manifests[0].role == "active" else None

    @property
    def declares(self) -> str | None:
        """What intact Content Credentials declare: "generated" (trainedAlgorithmicMedia,
        algorithmicMedia), "composite" (compositeWithTrainedAlgorithmicMedia,
        compositeSynthetic, or an ingredient declared generated), "capture", else None.
        None whenever the store is not intact (invalid, error) or absent."""
        if self.status not in ("valid", "unverified") or not self.manifests:
            return None
        active = set(self.manifests[0].source_types)
        below = {s for m in self.manifests[1:] for s in m.source_types}
        if active & GENERATED:
            return "generated"
        if active & COMPOSITE or below & (GENERATED | COMPOSITE):
            return "composite"
        if active & CAPTURE:
            return "capture"
        return None

    def summary(self) -> str:
        """One line for tables and CSV cells, e.g. "Content Credentials: generated by AI
        (trainedAlgorithmicMedia) with X, signed by Y" or "metadata: PNG parameters
        (Stable Diffusion)" or "none"."""
        parts = []
        m = self.manifests[0] if self.manifests else None
        if m is not None:
            tool = m.agents[0] if m.agents else m.claim_generator
            claim = m.what() + (f" with {tool}" if tool else "")
            claim += f", signed by {m.signer or 'an unnamed signer'}"
            if self.status == "valid":
                parts.append(f"Content Credentials: {claim}")
            elif self.status == "unverified":
                parts.append(f"Content Credentials: {claim} (unverified: {self.reason})")
            else:
                parts.append(
                    f"Content Credentials: {self.status}, {self.reason}; it claims: {claim}"
                )
        elif self.status in ("invalid", "error", "unverified"):
            parts.append(f"Content Credentials: {self.status}, {self.reason}")
        elif self.status == "unchecked":
            parts.append(f"c2pa: {self.c2pa}" + (f" ({self.reason})" if self.reason else ""))
        top = self.top_hint()
        if top is not None:
            parts.append(f"metadata: {top.label()} ({top.note or top.value})")
        return clip("; ".join(parts), MAX_SUMMARY) if parts else "none"

    def top_hint(self) -> Hint | None:
        """The hint the summary names: a generator, a declared source type, an editor, a
        camera, in that order; plain text fields are listed but never summarised."""
        for kind in ("generator", "source_type", "c2pa_remote", "editor", "camera"):
            for h in self.hints:
                if h.kind == kind:
                    return h
        return None

    @property
    def noteworthy(self) -> bool:
        """Worth a line beside the pixel score: credentials present or a tool named."""
        return self.status not in ("none", "unchecked") or self.top_hint() is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "c2pa": self.c2pa,
            "summary": self.summary(),
            "declares": self.declares,
            "manifests": [_manifest_dict(m) for m in self.manifests],
            "hints": [
                {"field": h.field, "value": h.value, "kind": h.kind, "note": h.note}
                for h in self.hints
            ],
            "notes": list(self.notes),
        }


def _manifest_dict(m: Manifest) -> dict[str, Any]:
    return {
        "label": m.label,
        "role": m.role,
        "claim_generator": m.claim_generator,
        "signer": m.signer,
        "issuer": m.issuer,
        "signed_at": m.signed_at,
        "actions": list(m.actions),
        "source_types": list(m.source_types),
        "agents": list(m.agents),
    }


def make(status: str, reason: str = "", **kw: Any) -> Provenance:
    """A Provenance with a checked status and a clipped one-line reason."""
    if status not in STATUSES:
        raise ValueError(f"unknown provenance status {status!r}")
    return Provenance(status=status, reason=clip(reason, MAX_REASON), **kw)
