"""Content Credentials for tests and benchmarks: a throwaway EC P-256 CA and signer made on
the spot (nothing fetched, nothing kept), and a way to sign image bytes with them.

    chain = throwaway_chain()
    signed = sign_image(jpeg_bytes, "image/jpeg", chain)   # created: trainedAlgorithmicMedia
    read_provenance(signed)                                  # unverified: CA on no trust list
    read_provenance(signed, trust_anchors=chain.ca_pem)      # valid

c2pa-rs checks the signing certificate's profile: an end-entity (not a CA) with the
digitalSignature key usage, an extended key usage C2PA accepts (emailProtection here),
signed by a CA that is not the signer itself, and both in their validity period.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


@dataclass(frozen=True)
class Chain:
    chain_pem: bytes  # signer certificate, then the CA's
    key_pem: bytes  # the signer's private key (PKCS#8)
    ca_pem: str  # the CA certificate: pass as trust_anchors to read `valid`


def throwaway_chain(signer: str = "unmask test signer", org: str = "unmask tests") -> Chain:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            ]
        )

    def usage(sign: bool, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )

    def cert(subject, issuer, key, issuer_key, ca: bool):
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), True)
            .add_extension(usage(sign=not ca, ca=ca), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if not ca:
            b = b.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            ).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                critical=False,
            )
        return b.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert(name(f"{org} CA"), name(f"{org} CA"), ca_key, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    ee = cert(name(signer), ca.subject, key, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    return Chain(
        chain_pem=ee.public_bytes(pem) + ca.public_bytes(pem),
        key_pem=key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        ca_pem=ca.public_bytes(pem).decode(),
    )


def sign_image(
    data: bytes,
    mime: str,
    chain: Chain,
    *,
    actions: tuple[tuple[str, str | None], ...] = (("c2pa.created", "trainedAlgorithmicMedia"),),
    generator: str = "unmask-test-generator",
    agent: str | None = None,
) -> bytes:
    """`data` with a C2PA manifest embedded: one actions assertion of (action, IPTC source
    type short name or None) pairs (the first must be c2pa.created: c2pa-rs checks it),
    signed ES256 by `chain`, no timestamp authority (that would need the network), no
    thumbnail."""
    import io

    import c2pa

    acts: list[dict[str, Any]] = []
    for action, source in actions:
        act: dict[str, Any] = {"action": action}
        if source:
            act["digitalSourceType"] = IPTC + source
        if agent:
            act["softwareAgent"] = {"name": agent}
        acts.append(act)
    manifest = {
        "claim_generator_info": [{"name": generator, "version": "1.0"}],
        "title": "test image",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": acts}}],
    }
    ctx = c2pa.Context.from_dict(
        {
            "builder": {"thumbnail": {"enabled": False}},
            "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
        }
    )
    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain.chain_pem, chain.key_pem, None)
    with c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest, context=ctx) as builder:
        out = io.BytesIO()
        builder.sign(signer, mime, io.BytesIO(data), out)
    return out.getvalue()
