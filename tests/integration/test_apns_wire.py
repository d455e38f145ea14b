"""ApnsSender against the APNs emulator (and an nginx-like h2 server) over real TLS sockets."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.emulators.apns import ApnsEmulator
from clarion.emulators.tls import make_pki
from tests.integration.apns_support import (
    BUNDLE,
    KEY_ID,
    SIGNING_KEY,
    TEAM_ID,
    TOKEN,
    Clock,
    K,
    Pki,
    Senders,
    by_apns_id,
    cert_creds,
    creds,
    emu,
    item,
    pem_of,
    pki,
    senders,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
__all__ = ["emu", "pki", "senders"]  # fixtures


# --- success, payload, headers -----------------------------------------------------------------


async def test_accepted_and_recorded_decoded(emu: ApnsEmulator, senders: Senders) -> None:
    send = item(image_url="https://img/x.png", link="https://l/1", ttl_seconds=600,
                collapse_key="promo", data={"k": "v"})
    [out] = await senders(emu).send(creds(), [send])
    assert out.kind is K.ACCEPTED
    assert out.provider_id == send.delivery_id
    [rec] = emu.received
    assert rec.status == 200
    assert rec.auth == "token"
    assert rec.token == TOKEN
    assert rec.headers["apns-topic"] == BUNDLE
    assert rec.headers["apns-push-type"] == "alert"
    assert rec.headers["apns-priority"] == "10"
    assert rec.headers["apns-collapse-id"] == "promo"
    assert rec.headers["apns-id"] == send.delivery_id
    assert 590 <= int(rec.headers["apns-expiration"]) - time.time() <= 600
    assert rec.jwt is not None
    assert (rec.jwt["kid"], rec.jwt["iss"]) == (KEY_ID, TEAM_ID)
    assert rec.payload == {
        "aps": {"alert": {"title": "Hello", "body": "World"}, "mutable-content": 1},
        "data": {"k": "v", "trackingId": "trk-1", "link": "https://l/1",
                 "imageUrl": "https://img/x.png"}}


async def test_dry_run_is_a_background_push(emu: ApnsEmulator, senders: Senders) -> None:
    [out] = await senders(emu).send(creds(), [item(dry_run=True)])
    assert out.kind is K.ACCEPTED
    [rec] = emu.received
    assert rec.payload == {"aps": {"content-available": 1}}
    assert (rec.headers["apns-push-type"], rec.headers["apns-priority"],
            rec.headers["apns-expiration"]) == ("background", "5", "0")


async def test_every_outcome_class_in_one_batch(emu: ApnsEmulator, senders: Senders) -> None:
    other_app = "cd" * 32
    emu.register_device(other_app, topic="com.other.app")
    emu.mark_dead("ef" * 32)
    batch = [
        item(),                                  # accepted
        item("dead" + "00" * 30),                # dead by prefix → 410
        item("ef" * 32),                         # marked dead → 410
        item("badd" + "00" * 30),                # other environment → BadDeviceToken
        item(other_app),                         # another app → DeviceTokenNotForTopic
        item(body="x" * 5000),                   # too large: not sent
        item(collapse_key="c" * 65),             # collapse id too long: not sent
        item("not-a-hex-token"),                 # not an APNs token: not sent
    ]
    out = await senders(emu).send(creds(), batch)
    assert [o.delivery_id for o in out] == [b.delivery_id for b in batch]
    got = [(o.kind, o.reason) for o in out]
    assert got == [
        (K.ACCEPTED, None),
        (K.INVALID_TOKEN, "Unregistered"),
        (K.INVALID_TOKEN, "Unregistered"),
        (K.MISMATCH, "BadDeviceToken"),
        (K.MISMATCH, "DeviceTokenNotForTopic"),
        (K.REJECTED, "PayloadTooLarge"),
        (K.REJECTED, "BadCollapseId"),
        (K.MISMATCH, "BadDeviceToken"),
    ]
    assert "sandbox environment the app is configured for" in (out[3].detail or "")
    assert out[5].detail is not None
    assert "over APNs' 4096-byte limit" in out[5].detail
    assert len(emu.received) == 5  # the three refused locally never left


async def test_several_notifications_in_one_batch_each_get_their_own_request(
        emu: ApnsEmulator, senders: Senders) -> None:
    tokens = [f"{i:02x}" * 32 for i in range(1, 6)]
    batch = [item(tokens[0], body="first"), item(tokens[1], body="second", priority="normal"),
             item(tokens[2], body="first"), item(tokens[3], dry_run=True, body="first"),
             item("zz", body="x" * 5000),        # bad token and too large: the token is told
             item(tokens[4], body="first")]
    out = await senders(emu).send(creds(), batch)
    assert [(o.kind, o.reason) for o in out] == [(K.ACCEPTED, None)] * 4 + [
        (K.MISMATCH, "BadDeviceToken"), (K.ACCEPTED, None)]
    got = {r.token: r for r in emu.received}
    assert len(got) == 5
    bodies = {t: (r.payload.get("aps", {}).get("alert", {}).get("body"),
                  r.headers["apns-priority"], r.headers["apns-push-type"])
              for t, r in got.items()}
    assert bodies == {tokens[0]: ("first", "10", "alert"), tokens[1]: ("second", "5", "alert"),
                      tokens[2]: ("first", "10", "alert"), tokens[3]: (None, "5", "background"),
                      tokens[4]: ("first", "10", "alert")}
    assert {r.headers["apns-id"] for r in got.values()} == {
        b.delivery_id for i, b in enumerate(batch) if i != 4}


async def test_topic_not_allowed_for_the_key(emu: ApnsEmulator, senders: Senders) -> None:
    emu.register_key(key_id=KEY_ID, team_id=TEAM_ID, key=SIGNING_KEY, topics=["com.other.app"])
    [out] = await senders(emu).send(creds(), [item()])
    assert (out.kind, out.reason) == (K.REJECTED, "TopicDisallowed")


async def test_unknown_key_is_a_credential_error_without_hammering(
        emu: ApnsEmulator, senders: Senders) -> None:
    bad = pem_of(ec.generate_private_key(ec.SECP256R1()))
    out = await senders(emu).send(creds(signing_key=bad), [item() for _ in range(50)])
    assert {(o.kind, o.reason) for o in out} == {(K.CREDENTIAL_ERROR, "InvalidProviderToken")}
    assert "Key ID, Team ID" in (out[0].detail or "")
    # At most one stream per connection (2) until a JWT is accepted; after a 403 nothing more.
    assert 1 <= len(emu.received) <= 2


async def test_refused_credentials_are_tried_again_in_the_next_batch(
        emu: ApnsEmulator, senders: Senders) -> None:
    sender = senders(emu, apns_connections=1)
    bad = creds(signing_key=pem_of(ec.generate_private_key(ec.SECP256R1())))
    await sender.send(bad, [item() for _ in range(10)])
    await sender.send(bad, [item() for _ in range(10)])
    assert [r.reason for r in emu.received] == ["InvalidProviderToken"] * 2


async def test_retry_later_honours_retry_after(emu: ApnsEmulator, senders: Senders) -> None:
    emu.set_faults(rate_429=1.0)
    sender = senders(emu)
    out = await sender.send(creds(), [item(), item()])
    assert {(o.kind, o.reason, o.retry_after_seconds) for o in out} == {
        (K.RETRY_LATER, "TooManyRequests", 1.0)}
    emu.set_faults(rate_429=0.0, rate_503=1.0)
    [out503] = await sender.send(creds(), [item()])
    assert (out503.kind, out503.reason, out503.retry_after_seconds) == (
        K.RETRY_LATER, "ServiceUnavailable", 1.0)


async def test_seeded_fault_rate_is_partial_and_exactly_one_outcome_each(
        emu: ApnsEmulator, senders: Senders) -> None:
    emu.set_faults(rate_503=0.3)
    batch = [item() for _ in range(100)]
    out = await senders(emu).send(creds(), batch)
    kinds = Counter(o.kind for o in out)
    assert sorted(o.delivery_id for o in out) == sorted(b.delivery_id for b in batch)
    assert set(kinds) == {K.ACCEPTED, K.RETRY_LATER}
    assert 10 < kinds[K.RETRY_LATER] < 50


# --- HTTP/2: streams, connections, GOAWAY, drops, timeouts ---------------------------------------


async def test_server_stream_limit_is_honoured(pki: Pki, senders: Senders) -> None:
    async with ApnsEmulator(pki=pki, max_streams=3, latency_ms=20) as emu:
        emu.register_key(key_id=KEY_ID, team_id=TEAM_ID, key=SIGNING_KEY)
        out = await senders(emu, apns_connections=1).send(creds(), [item() for _ in range(30)])
        assert {o.kind for o in out} == {K.ACCEPTED}
        assert emu.stats.max_concurrent == 3  # used, never exceeded
        assert emu.violations == []
        assert emu.stats.connections == 1


async def test_one_jwt_shared_by_all_connections(pki: Pki, senders: Senders) -> None:
    async with ApnsEmulator(pki=pki, max_streams=2, latency_ms=20) as emu:
        emu.register_key(key_id=KEY_ID, team_id=TEAM_ID, key=SIGNING_KEY)
        sender = senders(emu, apns_connections=3)
        out = await sender.send(creds(), [item() for _ in range(40)])
        assert {o.kind for o in out} == {K.ACCEPTED}
        conns = {r.connection for r in emu.received}
        assert len(conns) == 3  # streams spread over the connections
        assert len({r.jwt["sha256"] for r in emu.received if r.jwt}) == 1
        assert emu.violations == []


async def test_goaway_finishes_lower_streams_and_resends_the_rest(
        pki: Pki, senders: Senders) -> None:
    async with ApnsEmulator(pki=pki, goaway_every=10, latency_ms=10) as emu:
        emu.register_key(key_id=KEY_ID, team_id=TEAM_ID, key=SIGNING_KEY)
        batch = [item() for _ in range(60)]
        out = await senders(emu, apns_connections=1).send(creds(), batch)
        assert {o.kind for o in out} == {K.ACCEPTED}
        assert emu.stats.goaways >= 3
        assert emu.stats.connections >= 4
        seen = by_apns_id(emu)
        # Every notification processed exactly once: GOAWAY'd streams were not processed.
        assert sorted(seen) == sorted(b.delivery_id for b in batch)
        assert all(len(recs) == 1 and recs[0].status == 200 for recs in seen.values())


async def test_dropped_connection_gives_retry_later_never_a_false_accept(
        pki: Pki, senders: Senders) -> None:
    async with ApnsEmulator(pki=pki, drop_every=7) as emu:
        emu.register_key(key_id=KEY_ID, team_id=TEAM_ID, key=SIGNING_KEY)
        sender = senders(emu, apns_connections=1)
        batch = [item() for _ in range(30)]
        out = await sender.send(creds(), batch)
        assert len(out) == 30
        kinds = Counter((o.kind, o.reason) for o in out)
        assert set(kinds) == {(K.ACCEPTED, None), (K.RETRY_LATER, "ConnectionError")}
        seen = by_apns_id(emu)
        for o in out:
            if o.kind is K.ACCEPTED:
                assert [r.status for r in seen[o.delivery_id]] == [200]
            else:
                assert o.retry_after_seconds
                # The words say what happened; whether it is tried again is the caller's.
                assert "APNs" in (o.detail or "") and "retry" not in (o.detail or "")
        # The sender reconnects by itself for the next batch.
        emu.set_faults(drop_every=0)
        again = await sender.send(creds(), [item() for _ in range(5)])
        assert {o.kind for o in again} == {K.ACCEPTED}


async def test_timeout_is_retry_later_not_silence(pki: Pki, senders: Senders) -> None:
    async with ApnsEmulator(pki=pki, latency_ms=3000) as emu:
        emu.register_key(key_id=KEY_ID, team_id=TEAM_ID, key=SIGNING_KEY)
        started = time.monotonic()
        [out] = await senders(emu, request_timeout_seconds=0.3).send(creds(), [item()])
        assert (out.kind, out.reason) == (K.RETRY_LATER, "Timeout")
        assert "may or may not have been delivered" in (out.detail or "")
        assert time.monotonic() - started < 2


async def test_connection_refused_fails_fast_for_a_whole_batch(senders: Senders) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    out = await senders(f"https://127.0.0.1:{port}").send(creds(), [item() for _ in range(200)])
    assert {(o.kind, o.reason) for o in out} == {(K.RETRY_LATER, "ConnectionError")}
    assert time.monotonic() - started < 3


async def test_untrusted_server_certificate_says_to_set_the_ca_file(
        emu: ApnsEmulator, senders: Senders, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other")
    [out] = await senders(emu, ca=other.ca_file).send(creds(), [item()])
    assert (out.kind, out.reason) == (K.RETRY_LATER, "TLSError")
    assert "CLARION_CA_FILE" in (out.detail or "")


# --- the provider token over time ----------------------------------------------------------------


async def test_expired_provider_token_is_renewed_once_and_resent(
        emu: ApnsEmulator, senders: Senders) -> None:
    sender_clock, emu_clock = Clock(), Clock()
    emu.clock = emu_clock
    sender = senders(emu, clock=sender_clock)
    assert (await sender.send(creds(), [item()]))[0].kind is K.ACCEPTED
    # APNs' clock says the token is over an hour old; ours says 10 minutes (no renewal due).
    emu_clock.now += 61 * 60
    sender_clock.now += 10 * 60
    [out] = await sender.send(creds(), [item()])
    assert out.kind is K.ACCEPTED
    statuses = [(r.status, r.reason) for r in emu.received]
    assert statuses == [(200, None), (403, "ExpiredProviderToken"), (200, None)]
    jwts = [r.jwt for r in emu.received if r.jwt]
    assert jwts[0]["sha256"] != jwts[-1]["sha256"]
    # Still expired after the one renewal: a credential error, not a loop.
    emu_clock.now += 3 * 3600
    [bad] = await sender.send(creds(), [item()])
    assert (bad.kind, bad.reason) == (K.CREDENTIAL_ERROR, "ExpiredProviderToken")
    assert len(emu.received) == 5


async def test_token_renewed_after_its_age_and_accepted(emu: ApnsEmulator,
                                                        senders: Senders) -> None:
    clock = Clock()
    emu.clock = clock
    sender = senders(emu, clock=clock)
    await sender.send(creds(), [item()])
    clock.now += 51 * 60  # past the 20–50 minute renewal age, past Apple's 20 minute floor
    [out] = await sender.send(creds(), [item()])
    assert out.kind is K.ACCEPTED
    assert len({r.jwt["sha256"] for r in emu.received if r.jwt}) == 2


async def test_too_many_token_updates_is_retry_later_without_renewing(
        emu: ApnsEmulator, senders: Senders) -> None:
    await senders(emu).send(creds(), [item()])
    # Another process with the same key and its own token, 30 s later.
    other = senders(emu, clock=Clock(time.time() + 30))
    [out] = await other.send(creds(), [item()])
    assert (out.kind, out.reason) == (K.RETRY_LATER, "TooManyProviderTokenUpdates")
    assert out.retry_after_seconds == 60.0
    assert len(emu.received) == 2


# --- certificate auth -------------------------------------------------------------------------


async def test_certificate_auth(emu: ApnsEmulator, senders: Senders) -> None:
    issued = emu.issue_client_certificate(BUNDLE)
    sender = senders(emu)
    out = await sender.send(cert_creds(issued.certificate_pem, issued.private_key_pem),
                            [item() for _ in range(20)])
    assert {o.kind for o in out} == {K.ACCEPTED}
    assert {r.auth for r in emu.received} == {"certificate"}
    assert all(r.jwt is None for r in emu.received)


async def test_certificate_for_the_other_environment(emu: ApnsEmulator,
                                                     senders: Senders) -> None:
    issued = emu.issue_client_certificate(BUNDLE, environment="production")
    [out] = await senders(emu).send(
        cert_creds(issued.certificate_pem, issued.private_key_pem), [item()])
    assert (out.kind, out.reason) == (K.CREDENTIAL_ERROR, "BadCertificateEnvironment")


async def test_untrusted_certificate_is_refused_in_the_handshake(
        emu: ApnsEmulator, senders: Senders, pki: Pki) -> None:
    from clarion.emulators.apns.keys import ClientCA

    stranger = ClientCA().issue(BUNDLE)  # signed by a CA the emulator does not know
    out = await senders(emu).send(cert_creds(stranger.certificate_pem,
                                             stranger.private_key_pem), [item(), item()])
    # Python's TLS server (the emulator) closes without sending its alert, so the sender
    # cannot tell a refused certificate from a dropped connection: it retries later and says
    # what to check. Apple sends the alert, which is a credential error (see the unit test).
    assert {(o.kind, o.reason) for o in out} == {(K.RETRY_LATER, "ConnectionError")}
    assert "push certificate is being refused" in (out[0].detail or "")
    assert len(emu.received) == 0


async def test_certificate_for_another_app(emu: ApnsEmulator, senders: Senders) -> None:
    issued = emu.issue_client_certificate("com.other.app")
    [out] = await senders(emu).send(
        cert_creds(issued.certificate_pem, issued.private_key_pem), [item()])
    assert (out.kind, out.reason) == (K.REJECTED, "TopicDisallowed")


async def test_listed_self_signed_certificate_is_accepted(pki: Pki, senders: Senders) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.USER_ID, BUNDLE),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"Apple Push Services: {BUNDLE}")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    emu = ApnsEmulator(pki=pki)
    emu.trust_client_certificate(pem)
    async with emu:
        [out] = await senders(emu).send(cert_creds(pem, pem_of(key)), [item()])
    assert out.kind is K.ACCEPTED


async def test_broken_certificate_pem_is_a_credential_error(senders: Senders,
                                                            emu: ApnsEmulator) -> None:
    [out] = await senders(emu).send(cert_creds("garbage", "garbage"), [item()])
    assert (out.kind, out.reason) == (K.CREDENTIAL_ERROR, "BadCertificate")


# --- nginx-like answers: empty DATA, RST_STREAM(NO_ERROR), small windows, PING -----------------


class NginxLike:
    """A raw h2 server answering like nginx `return 200`: HEADERS without END_STREAM, an empty
    DATA frame with END_STREAM, then RST_STREAM(NO_ERROR). Small initial window; counts PINGs;
    can refuse its first streams with RST_STREAM(REFUSED_STREAM).
    """

    def __init__(self, pki: Pki, *, window: int = 65535, refuse: int = 0) -> None:
        self.pki = pki
        self.window = window
        self.refuse = refuse
        self.pings = 0
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        from h2.config import H2Configuration
        from h2.connection import H2Connection
        from h2.errors import ErrorCodes
        from h2.events import PingReceived, RequestReceived, StreamEnded
        from h2.settings import SettingCodes, Settings
        from hyperframe.frame import RstStreamFrame

        outer = self

        class Proto(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.t = cast("asyncio.Transport", transport)
                self.h2 = H2Connection(H2Configuration(client_side=False))
                self.h2.local_settings = Settings(client=False, initial_values={
                    SettingCodes.INITIAL_WINDOW_SIZE: outer.window,
                    SettingCodes.MAX_CONCURRENT_STREAMS: 100})
                self.h2.initiate_connection()
                self.t.write(self.h2.data_to_send())
                self.ids: dict[int, str] = {}

            def data_received(self, data: bytes) -> None:
                for ev in self.h2.receive_data(data):
                    if isinstance(ev, RequestReceived):
                        self.ids[ev.stream_id] = dict(ev.headers).get(b"apns-id", b"").decode()
                    elif isinstance(ev, PingReceived):
                        outer.pings += 1
                    elif isinstance(ev, StreamEnded) and outer.refuse > 0:
                        outer.refuse -= 1
                        self.h2.reset_stream(ev.stream_id, ErrorCodes.REFUSED_STREAM)
                    elif isinstance(ev, StreamEnded):
                        outer.requests += 1
                        sid = ev.stream_id
                        self.h2.send_headers(sid, [(":status", "200"),
                                                   ("apns-id", self.ids.pop(sid))])
                        self.h2.send_data(sid, b"", end_stream=True)
                        rst = RstStreamFrame(sid)
                        rst.error_code = 0
                        self.t.write(self.h2.data_to_send() + rst.serialize())
                    elif hasattr(ev, "flow_controlled_length") and ev.flow_controlled_length:
                        self.h2.acknowledge_received_data(ev.flow_controlled_length,
                                                          ev.stream_id)
                self.t.write(self.h2.data_to_send())

        self.server = await asyncio.get_running_loop().create_server(
            Proto, "127.0.0.1", 0, ssl=self.pki.server_context(alpn=["h2"]))
        return f"https://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def nginx(pki: Pki) -> AsyncIterator[NginxLike]:
    server = NginxLike(pki, window=512)
    yield server
    await server.stop()


async def test_empty_data_reset_no_error_and_flow_control(nginx: NginxLike, pki: Pki,
                                                         senders: Senders) -> None:
    url = await nginx.start()
    sender = senders(url, ca=pki.ca_file)
    batch = [item(body="y" * 3000) for _ in range(20)]  # 3 KB bodies through a 512 B window
    out = await sender.send(creds(), batch)
    assert [(o.kind, o.provider_id) for o in out] == [(K.ACCEPTED, b.delivery_id)
                                                      for b in batch]
    assert nginx.requests == 20


async def test_keepalive_ping_when_idle(nginx: NginxLike, pki: Pki,
                                        senders: Senders) -> None:
    url = await nginx.start()
    sender = senders(url, ca=pki.ca_file, ping_interval=0.3)
    await sender.send(creds(), [item()])
    await asyncio.sleep(1.3)
    assert nginx.pings >= 1
    [conn] = sender.pool_for(creds()).connections
    assert conn.usable
    assert (await sender.send(creds(), [item()]))[0].kind is K.ACCEPTED
    assert sender.pool_for(creds()).opened == 1


async def test_refused_streams_are_sent_again(pki: Pki, senders: Senders) -> None:
    server = NginxLike(pki, refuse=3)
    try:
        url = await server.start()
        out = await senders(url, ca=pki.ca_file).send(creds(), [item() for _ in range(5)])
        assert {o.kind for o in out} == {K.ACCEPTED}
        assert server.requests == 5
    finally:
        await server.stop()


async def test_alpn_h2_is_required(pki: Pki, senders: Senders) -> None:
    async def http1(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(http1, "127.0.0.1", 0,
                                        ssl=pki.server_context(alpn=["http/1.1"]))
    try:
        url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        [out] = await senders(url, ca=pki.ca_file).send(creds(), [item()])
        assert (out.kind, out.reason) == (K.RETRY_LATER, "ConnectionError")
        assert "ALPN" in (out.detail or "")
    finally:
        server.close()
