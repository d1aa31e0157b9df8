"""Provenance evidence beside the pixels: C2PA Content Credentials (signed) and the
metadata hints (unsigned) an image or video carries, read without decoding pixels and
without the network. The pixel score never depends on it; results report both.

    from unmask.provenance import read_provenance
    p = read_provenance("photo.jpg")   # or the uploaded bytes
    p.status, p.summary(), p.to_dict()

Layer: imports only the standard library, Pillow and (inside one function) `c2pa`.
"""

from unmask.provenance.read import TRUST_ENV, read_provenance
from unmask.provenance.result import STATUSES, Hint, Manifest, Provenance

__all__ = ["STATUSES", "TRUST_ENV", "Hint", "Manifest", "Provenance", "read_provenance"]
