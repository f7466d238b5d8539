"""server_context(): certificate files to an SSLContext, every bad file named by its option."""

from __future__ import annotations

import os
import ssl

import pytest

from reactorsvc.io.tls import TLSConfigError, server_context


def test_a_good_chain_and_mutual_tls(tls_certs):
    ctx = server_context(tls_certs.server_cert, tls_certs.server_key)
    assert ctx.verify_mode == ssl.CERT_NONE and ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    ctx = server_context(tls_certs.server_cert, tls_certs.server_key, tls_certs.ca, "1.3")
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.minimum_version == ssl.TLSVersion.TLSv1_3


def _raises(option, match, *args):
    with pytest.raises(TLSConfigError, match=match) as info:
        server_context(*args)
    assert info.value.option == option


def test_bad_files_name_their_option(tls_certs, tmp_path):
    good_cert, good_key = tls_certs.server_cert, tls_certs.server_key
    _raises("cert", "cannot read", tmp_path / "missing.pem", good_key)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    _raises("cert", "is not a PEM file", tmp_path / "junk.pem", good_key)
    (tmp_path / "broken.pem").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    _raises("cert", "holds no valid certificate", tmp_path / "broken.pem", good_key)
    _raises("key", "does not match the certificate", good_cert, tls_certs.client_key)
    _raises("key", "is not a PEM file", good_cert, tmp_path / "junk.pem")
    _raises("client_ca", "cannot read", good_cert, good_key, tmp_path / "missing.pem")
    _raises("min_version", "must be one of 1.2, 1.3", good_cert, good_key, None, "1.1")
    if os.geteuid() != 0:  # root reads anything
        unreadable = tmp_path / "secret.key"
        unreadable.write_bytes(good_key.read_bytes())
        unreadable.chmod(0)
        _raises("key", "cannot read", good_cert, unreadable)
