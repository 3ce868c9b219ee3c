"""Webhooks: where a callback may go (the URL's form, the allow list, every resolved address),
how it is signed, retried (backoff, Retry-After, a bounded time, no retry on 4xx), ordered per
job, bounded (a full queue) and let go at shutdown; the POST goes to the address checked."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import http.server
import json
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

import pytest

from orchestrator.config import Settings, callback_allow_list
from orchestrator.errors import FailedPrecondition, InvalidArgument
from orchestrator.jobs import webhook_http
from orchestrator.jobs.callback_urls import AllowList, CallbackRefused, parse_callback_url, redact, resolve
from orchestrator.jobs.metrics import JobMetrics
from orchestrator.jobs.validation import parse_extra
from orchestrator.jobs.webhook_http import Answer, PinnedHTTPSConnection, retry_after
from orchestrator.jobs.webhooks import (
    DELIVERY_HEADER,
    JOB_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Backoff,
    SenderLimits,
    TenantSecrets,
    WebhookSender,
    signature,
)
from orchestrator.request import CheckedRequest, EditOptions, JobStatus, VideoEditRequest, VideoEditStatus

SECRET = b"s3cret-for-tests"
NEEDED = dict(input_video_path="clip.mp4", mask_prompt="cat", edit_prompt="make it blue")
NO_ALLOW = AllowList()
FAST = Backoff(base_s=0.01, cap_s=0.05, jitter=0.0)


def fake_dns(monkeypatch, table: dict[str, list[str]]) -> list[str]:
    """socket.getaddrinfo answering from `table` (a missing name: gaierror); returns the names
    looked up, in order."""
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        family = lambda a: socket.AF_INET6 if ":" in a else socket.AF_INET  # noqa: E731
        return [(family(a), socket.SOCK_STREAM, 6, "", (a, port)) for a in table[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


# --- the URL's form ---


@pytest.mark.parametrize(
    "url, says",
    [
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("gopher://example.com/", "scheme 'gopher'"),
        ("ftp://example.com/", "scheme 'ftp'"),
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("example.com/hook", "scheme ''"),
        ("https://user:pw@example.com/", "user name or password"),
        ("https://user@example.com/", "user name or password"),
        ("https:///path", "has no host"),
        ("https://exa mple.com/", "whitespace"),
        ("https://example.com/\nHost: evil", "control characters"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://ex!ample.com/", "not a valid hostname"),
        ("https://[fe80::1%25eth0]/", "zone"),
        ("https://example.com/" + "a" * 2048, "at most 2048"),
    ],
)
def test_urls_of_the_wrong_form_are_refused_saying_why(url, says):
    with pytest.raises(CallbackRefused, match=says):
        parse_callback_url(url)


def test_a_url_is_taken_apart():
    target = parse_callback_url("HTTPS://Hooks.Example.com/a/b?token=x#frag")
    parts = (target.scheme, target.host, target.port, target.target)
    assert parts == ("https", "hooks.example.com", 443, "/a/b?token=x")
    assert parse_callback_url("http://[2606:4700::1111]:8080").target == "/"
    assert parse_callback_url("http://[2606:4700::1111]:8080").port == 8080


def test_extra_callback_url_is_checked_with_the_other_options():
    assert parse_extra({"callback_url": "https://example.com/h"}).callback_url == "https://example.com/h"
    with pytest.raises(InvalidArgument) as err:
        parse_extra({"callback_url": "gopher://example.com/"})
    assert err.value.field == "extra[callback_url]" and "http or https only" in str(err.value)


def test_the_query_never_reaches_a_log_line():
    assert redact("https://u:p@hooks.example.com:8443/in?token=abc#x") == "https://hooks.example.com:8443/in?…"
    assert "abc" not in repr(EditOptions(callback_url="https://h.example.com/?token=abc"))


# --- where it leads ---


@pytest.mark.parametrize(
    "host, why",
    [
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("172.16.0.1", "private"),
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not public"),
        ("[::1]", "loopback"),
        ("[fd00::1]", "private"),
        ("[fe80::1]", "link-local"),
        ("[::]", "unspecified"),
        ("[ff02::1]", "multicast"),
        ("[::ffff:10.0.0.1]", "private"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("[2002:a00:1::]", "private"),  # 6to4 of 10.0.0.1
    ],
)
def test_addresses_that_are_not_public_are_refused(host, why):
    with pytest.raises(CallbackRefused, match=f"an? {why} address"):
        resolve(parse_callback_url(f"http://{host}/"), NO_ALLOW)


@pytest.mark.parametrize("host", ["8.8.8.8", "[2606:4700::1111]"])
def test_public_addresses_are_allowed(host):
    assert resolve(parse_callback_url(f"http://{host}/"), NO_ALLOW)


def test_a_name_is_judged_by_every_address_it_resolves_to(monkeypatch):
    fake_dns(
        monkeypatch,
        {"public.example": ["93.184.216.34"], "inside.example": ["10.1.2.3"], "both.example": ["93.184.216.34", "::1"]},
    )
    assert [str(a) for a in resolve(parse_callback_url("https://public.example/"), NO_ALLOW)] == ["93.184.216.34"]
    with pytest.raises(CallbackRefused, match=r"'inside.example' resolves to 10.1.2.3, a private address"):
        resolve(parse_callback_url("https://inside.example/"), NO_ALLOW)
    with pytest.raises(CallbackRefused, match=r"::1, a loopback address"):
        resolve(parse_callback_url("https://both.example/"), NO_ALLOW)
    with pytest.raises(socket.gaierror):
        resolve(parse_callback_url("https://nowhere.example/"), NO_ALLOW)


def test_localhost_is_refused_unless_allowed(monkeypatch):
    fake_dns(monkeypatch, {"localhost": ["127.0.0.1", "::1"]})
    with pytest.raises(CallbackRefused, match="loopback"):
        resolve(parse_callback_url("http://localhost:8080/"), NO_ALLOW)
    allowed = AllowList.parse(callback_allow_list("localhost, 127.0.0.0/8, ::1"))
    assert len(resolve(parse_callback_url("http://localhost:8080/"), allowed)) == 2


def test_the_allow_list_takes_names_suffixes_addresses_and_networks(monkeypatch):
    fake_dns(
        monkeypatch,
        {
            "hooks.partner.com": ["93.184.216.34"],
            "a.b.example.com": ["10.1.2.3"],
            "example.com": ["93.184.216.35"],
            "badexample.com": ["93.184.216.36"],
            "other.org": ["93.184.216.37"],
        },
    )
    allow = AllowList.parse(callback_allow_list("hooks.partner.com,*.example.com,10.0.0.0/8,192.168.1.5"))
    assert resolve(parse_callback_url("https://hooks.partner.com/"), allow)
    assert resolve(parse_callback_url("https://a.b.example.com/"), allow)  # a suffix, to an allowed network
    assert resolve(parse_callback_url("http://192.168.1.5/"), allow)  # an allowed address literal
    assert resolve(parse_callback_url("http://10.9.8.7/"), allow)  # in an allowed network
    for url in ("https://example.com/", "https://badexample.com/", "https://other.org/", "http://8.8.8.8/"):
        with pytest.raises(CallbackRefused, match="not in VIDEOEDIT_CALLBACK_ALLOW"):
            resolve(parse_callback_url(url), allow)
    with pytest.raises(CallbackRefused, match="192.168.1.6, a private address"):
        resolve(parse_callback_url("http://192.168.1.6/"), AllowList.parse(("192.168.1.5",)))


def test_networks_alone_widen_the_addresses_and_keep_every_public_host(monkeypatch):
    fake_dns(monkeypatch, {"any.org": ["93.184.216.37"]})
    allow = AllowList.parse(callback_allow_list("127.0.0.1"))
    assert resolve(parse_callback_url("https://any.org/"), allow)
    assert resolve(parse_callback_url("http://127.0.0.1:9/"), allow)


@pytest.mark.parametrize("entry", ["exa mple.com", "http://x.com", "*", "10.0.0.0/33", "a..b"])
def test_bad_allow_entries_are_refused_at_start(entry):
    with pytest.raises(ValueError, match="VIDEOEDIT_CALLBACK_ALLOW entry"):
        callback_allow_list(entry)


def test_settings_read_the_webhook_variables_and_never_show_the_secret(monkeypatch):
    monkeypatch.setenv("VIDEOEDIT_CALLBACK_ALLOW", "Hooks.Example.com, 10.0.0.0/8")
    monkeypatch.setenv("VIDEOEDIT_WEBHOOK_SECRET", "top-secret")
    monkeypatch.setenv("VIDEOEDIT_CALLBACK_RETRY_S", "60")
    monkeypatch.setenv("VIDEOEDIT_INPUT_ROOTS", "/tmp/in-hooks")
    settings = Settings.from_env()
    assert settings.callback_allow == ("hooks.example.com", "10.0.0.0/8")
    assert settings.webhook_secret == "top-secret" and settings.callback_retry_s == 60
    assert "top-secret" not in repr(settings)
    secrets = TenantSecrets.from_settings(settings)
    assert secrets.secret_for("") == b"top-secret"  # the default tenant's
    acme, beta = secrets.secret_for("acme"), secrets.secret_for("beta")
    assert len({acme, beta, b"top-secret"}) == 3 and b"top-secret" not in acme  # one per tenant, derived
    assert secrets.secret_for("acme") == acme == TenantSecrets(b"top-secret").secret_for("acme")  # on any replica
    assert TenantSecrets(None).secret_for("acme") is None
    assert "top-secret" not in repr(secrets)


# --- StartEdit ---


def checked(url: str | None) -> CheckedRequest:
    request = VideoEditRequest(job_id="j1", extra={"callback_url": url} if url else {}, **NEEDED)
    return CheckedRequest(request, EditOptions(callback_url=url))


def test_start_edit_refuses_hosts_that_lead_inside_naming_the_field(monkeypatch):
    fake_dns(monkeypatch, {"metadata.internal": ["169.254.169.254"]})
    sender = WebhookSender(NO_ALLOW, TenantSecrets(SECRET), JobMetrics(dict))
    sender.check(checked(None))
    sender.check(checked("https://8.8.8.8/hook"))
    for url, says in (
        ("http://10.0.0.1/", "10.0.0.1, a private address"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://metadata.internal/", "'metadata.internal' resolves to 169.254.169.254"),
        ("http://nowhere.invalid/", "'nowhere.invalid' does not resolve"),
    ):
        with pytest.raises(InvalidArgument, match=says) as err:
            sender.check(checked(url))
        assert err.value.field == "extra[callback_url]"


def test_start_edit_refuses_callbacks_when_there_is_no_secret():
    sender = WebhookSender(NO_ALLOW, TenantSecrets(None), JobMetrics(dict))
    sender.check(checked(None))  # no callback: no secret needed
    with pytest.raises(FailedPrecondition, match="no webhook secret"):
        sender.check(checked("https://8.8.8.8/hook"))


# --- delivery ---


@dataclass
class Receiver:
    """A fake `post`: answers from `answers` (then 200), records each call; `hold` blocks it."""

    answers: list[object] = field(default_factory=list)
    calls: list[tuple[str, dict, bytes, str, float]] = field(default_factory=list)
    hold: threading.Event | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, target, address, body, headers, timeout_s):
        if self.hold is not None:
            self.hold.wait()
        with self.lock:
            self.calls.append((target.host, dict(headers), body, str(address), time.monotonic()))
            answer = self.answers.pop(0) if self.answers else Answer(200)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def bodies(self) -> list[dict]:
        with self.lock:
            return [json.loads(body) for _, _, body, _, _ in self.calls]


def sender(receiver: Receiver, **limits) -> WebhookSender:
    return WebhookSender(NO_ALLOW, TenantSecrets(SECRET), JobMetrics(dict), SenderLimits(**limits), FAST, receiver)


def status(job_id: str, state: JobStatus, message: str = "") -> VideoEditStatus:
    return VideoEditStatus(job_id=job_id, status=state, message=message)


def request(job_id: str, url: str = "https://8.8.8.8/hook?token=abc") -> VideoEditRequest:
    return VideoEditRequest(job_id=job_id, extra={"callback_url": url}, **NEEDED)


def wait_for(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def outcomes(s: WebhookSender) -> dict[str, float]:
    names = ("delivered", "retried", "gave_up", "refused", "dropped")
    value = s.metrics.registry.get_sample_value
    return {n: v for n in names if (v := value("videoedit_orchestrator_webhook_deliveries_total", {"outcome": n}))}


def test_a_delivery_is_signed_over_the_timestamp_and_the_exact_body():
    receiver = Receiver()
    s = sender(receiver)
    s.job_status(request("j1"), status("j1", JobStatus.EXTRACTING, "extracting"))
    wait_for(lambda: receiver.calls)
    host, headers, body, address, _ = receiver.calls[0]
    assert (host, address) == ("8.8.8.8", "8.8.8.8")
    assert headers["Content-Type"] == "application/json" and headers[JOB_HEADER] == "j1"
    assert len(headers[DELIVERY_HEADER]) == 32
    assert abs(int(headers[TIMESTAMP_HEADER]) - time.time()) < 5
    expected = hmac.new(SECRET, headers[TIMESTAMP_HEADER].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers[SIGNATURE_HEADER], f"sha256={expected}")
    assert signature(SECRET, headers[TIMESTAMP_HEADER], body) == headers[SIGNATURE_HEADER]
    assert json.loads(body) == status("j1", JobStatus.EXTRACTING, "extracting").to_dict()
    assert SECRET.decode() not in json.dumps(headers).replace(headers[SIGNATURE_HEADER], "")
    wait_for(lambda: outcomes(s) == {"delivered": 1})


def test_jobs_without_a_callback_queue_nothing():
    receiver = Receiver()
    s = sender(receiver)
    s.job_status(VideoEditRequest(job_id="j1", **NEEDED), status("j1", JobStatus.FINISHED))
    assert s.pending == 0 and not s._threads


def test_5xx_429_and_connection_errors_are_retried_with_backoff_then_delivered():
    receiver = Receiver([Answer(503), ConnectionRefusedError(111, "Connection refused"), Answer(429), Answer(502)])
    s = sender(receiver)
    s.job_status(request("j1"), status("j1", JobStatus.FINISHED))
    wait_for(lambda: outcomes(s).get("delivered") == 1)
    assert outcomes(s) == {"retried": 4, "delivered": 1}
    times = [c[4] for c in receiver.calls]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert gaps[0] >= 0.009 and gaps[1] >= 0.019 and gaps[2] >= 0.039 and gaps[3] >= 0.049  # doubling, capped
    assert len({c[1][DELIVERY_HEADER] for c in receiver.calls}) == 1  # one delivery, tried again


def test_retry_after_is_honoured_up_to_the_cap():
    assert Backoff(cap_s=60).delay(1, retry_after_s=7) == 7
    assert Backoff(cap_s=60).delay(1, retry_after_s=7200) == 60
    assert 0.5 <= Backoff(base_s=1, jitter=0.5).delay(1) <= 1.0
    assert Backoff(base_s=1, cap_s=10, jitter=0).delay(9) == 10
    receiver = Receiver([Answer(503, retry_after_s=0.2)])
    s = sender(receiver)
    s.job_status(request("j1"), status("j1", JobStatus.FINISHED))
    wait_for(lambda: len(receiver.calls) == 2)
    assert 0.045 <= receiver.calls[1][4] - receiver.calls[0][4] < 0.2  # the cap (0.05 s), not 0.2 s


def test_retry_after_headers_are_read_as_seconds_or_a_date():
    assert retry_after("120") == 120
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10
    assert retry_after("soon") is None and retry_after(None) is None


def test_4xx_is_not_retried():
    receiver = Receiver([Answer(404), Answer(401)])
    s = sender(receiver)
    s.job_status(request("j1"), status("j1", JobStatus.EXTRACTING))
    s.job_status(request("j1"), status("j1", JobStatus.FINISHED))
    wait_for(lambda: outcomes(s).get("gave_up") == 2)
    assert len(receiver.calls) == 2 and s.pending == 0


def test_retries_stop_after_the_retry_time():
    receiver = Receiver([Answer(503)] * 1000)
    s = sender(receiver, retry_s=0.3)
    started = time.monotonic()
    s.job_status(request("j1"), status("j1", JobStatus.FINISHED))
    wait_for(lambda: outcomes(s).get("gave_up") == 1)
    assert time.monotonic() - started < 1.0
    assert 3 <= len(receiver.calls) <= 12 and s.pending == 0


def test_one_jobs_deliveries_go_out_in_order_and_another_job_is_not_held_up():
    receiver = Receiver([Answer(503), Answer(503)])
    s = sender(receiver, workers=4)
    stages = [JobStatus.EXTRACTING, JobStatus.MASKING, JobStatus.PROPAGATING, JobStatus.EDITING, JobStatus.FINISHED]
    for stage in stages:
        s.job_status(request("a"), status("a", stage))
    s.job_status(request("b", "https://8.8.4.4/"), status("b", JobStatus.FINISHED))
    wait_for(lambda: outcomes(s).get("delivered") == 6)
    bodies = receiver.bodies()
    assert [b["status"] for b in bodies if b["job_id"] == "a"][-5:] == [st.value for st in stages]
    # b went out while a's first delivery waited for its retries
    assert [b["job_id"] for b in bodies].index("b") < 3


def test_a_full_queue_drops_the_oldest_waiting_delivery_of_that_job_or_the_new_one(caplog):
    hold = threading.Event()
    receiver = Receiver(hold=hold)
    s = sender(receiver, max_pending=3, workers=1)
    caplog.set_level(logging.WARNING, "orchestrator.jobs.webhooks")
    s.job_status(request("a"), status("a", JobStatus.EXTRACTING))  # being sent (held)
    wait_for(lambda: s._due == [])
    s.job_status(request("a"), status("a", JobStatus.MASKING))
    s.job_status(request("a"), status("a", JobStatus.EDITING))
    s.job_status(request("a"), status("a", JobStatus.FINISHED))  # full: masking goes
    s.job_status(request("b", "https://8.8.4.4/"), status("b", JobStatus.FINISHED))  # full, none of b's: this one goes
    assert s.pending == 3 and outcomes(s) == {"dropped": 2}
    hold.set()
    wait_for(lambda: outcomes(s).get("delivered") == 3)
    assert [b["status"] for b in receiver.bodies()] == ["extracting", "editing", "finished"]
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert any("job a: callback (masking) to 8.8.8.8 dropped" in m for m in dropped)
    assert any("job b: callback (finished) to 8.8.4.4 dropped" in m for m in dropped)
    assert not any("token=abc" in r.getMessage() for r in caplog.records)


def test_enqueueing_never_blocks_on_a_stuck_receiver():
    hold = threading.Event()
    s = sender(Receiver(hold=hold), max_pending=10, workers=1)
    started = time.monotonic()
    for i in range(100):
        s.job_status(request(f"j{i % 3}"), status(f"j{i % 3}", JobStatus.EDITING))
    assert time.monotonic() - started < 0.5 and s.pending == 10
    hold.set()


def test_shutdown_gives_a_short_grace_then_drops_what_is_pending(caplog):
    hold = threading.Event()
    s = sender(Receiver(hold=hold))
    caplog.set_level(logging.WARNING, "orchestrator.jobs.webhooks")
    for stage in (JobStatus.EDITING, JobStatus.QUEUED):
        s.job_status(request("j1"), status("j1", stage))
    started = time.monotonic()
    s.close(grace_s=0.2)
    assert 0.19 <= time.monotonic() - started < 1.0
    assert s.pending == 0 and outcomes(s) == {"dropped": 2}
    assert "2 webhook deliveries dropped after a 0.2s grace (jobs j1)" in caplog.text
    s.job_status(request("j2"), status("j2", JobStatus.FINISHED))  # after close: dropped at once
    assert s.pending == 0
    hold.set()


def test_shutdown_waits_no_longer_than_what_is_pending():
    receiver = Receiver()
    s = sender(receiver)
    s.job_status(request("j1"), status("j1", JobStatus.FINISHED))
    started = time.monotonic()
    s.close(grace_s=5)
    assert time.monotonic() - started < 1 and outcomes(s) == {"delivered": 1}
    wait_for(lambda: not any(t.is_alive() for t in s._threads))


def test_the_host_is_checked_again_when_sent_and_the_checked_address_is_the_one_connected_to(monkeypatch):
    table = {"hooks.example": ["93.184.216.34"]}
    fake_dns(monkeypatch, table)
    receiver = Receiver()
    s = sender(receiver)
    s.check(checked("https://hooks.example/h"))
    table["hooks.example"] = ["10.0.0.1"]  # rebinding, after StartEdit
    s.job_status(request("j1", "https://hooks.example/h"), status("j1", JobStatus.FINISHED))
    wait_for(lambda: outcomes(s).get("refused") == 1)
    assert receiver.calls == []
    table["hooks.example"] = ["93.184.216.34"]
    s.job_status(request("j2", "https://hooks.example/h"), status("j2", JobStatus.FINISHED))
    wait_for(lambda: receiver.calls)
    assert receiver.calls[0][:1] == ("hooks.example",) and receiver.calls[0][3] == "93.184.216.34"


def test_dns_failures_when_sending_are_retried(monkeypatch):
    fake_dns(monkeypatch, {})
    s = sender(Receiver(), retry_s=0.1)
    s.job_status(request("j1", "https://gone.example/"), status("j1", JobStatus.FINISHED))
    wait_for(lambda: outcomes(s).get("gave_up") == 1)
    assert outcomes(s)["retried"] >= 1


# --- the POST itself ---


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str, bytes]] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.headers["Host"], self.path, body))
        self.send_response(202)
        self.send_header("Retry-After", "3")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def loopback_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, name="test-receiver", daemon=True)
    thread.start()
    _Recorder.seen = []
    yield server
    server.shutdown()
    server.server_close()


def test_the_post_goes_to_the_pinned_address_with_the_hosts_name(loopback_server, monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):  # the address literal only (create_connection's own lookup)
        assert host == "127.0.0.1", f"the POST looked up {host!r} itself"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    port = loopback_server.server_address[1]
    target = parse_callback_url(f"http://hooks.example:{port}/in?x=1")
    answer = webhook_http.post(target, "127.0.0.1", b'{"a":1}', {"Content-Type": "application/json"}, 5)
    assert answer == Answer(202, 3.0)
    assert _Recorder.seen == [(f"hooks.example:{port}", "/in?x=1", b'{"a":1}')]


def test_https_names_the_host_in_sni_and_the_certificate_check(loopback_server):
    class Recording(ssl.SSLContext):
        named: list[str | None] = []

        def wrap_socket(self, sock, server_hostname=None, **kwargs):
            self.named.append(server_hostname)
            sock.close()
            raise ssl.SSLCertVerificationError("recorded")

    port = loopback_server.server_address[1]
    conn = PinnedHTTPSConnection("hooks.example", port, "127.0.0.1", 5, tls=Recording(ssl.PROTOCOL_TLS_CLIENT))
    with pytest.raises(ssl.SSLError):
        conn.request("POST", "/", body=b"{}")
    assert Recording.named == ["hooks.example"]
    default = PinnedHTTPSConnection("hooks.example", 443, "127.0.0.1", 5)
    assert default.tls.check_hostname and default.tls.verify_mode == ssl.CERT_REQUIRED


def test_the_readmes_verification_snippet_accepts_our_signature_and_nothing_else():
    from tests.helpers import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("### Webhooks") :]
    code = section[section.index("```python") + len("```python") :]
    snippet = code[: code.index("```")]
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102 (the README's own code)
    verify = namespace["verify"]
    body, timestamp = b'{"job_id":"j1"}', str(int(time.time()))
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(SECRET, timestamp, body)}
    assert verify(SECRET, headers, body)
    assert not verify(b"another key", headers, body)
    assert not verify(SECRET, headers, body + b" ")
    assert not verify(SECRET, {**headers, TIMESTAMP_HEADER: str(int(time.time()) - 3600)}, body)


class _Dripping(http.server.BaseHTTPRequestHandler):
    """Answers one byte at a time, each well within the socket timeout."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.05)

    def log_message(self, *args):
        pass


def test_a_receiver_answering_a_byte_at_a_time_is_cut_off_at_the_timeout():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Dripping)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="test-dripping", daemon=True).start()
    try:
        target = parse_callback_url(f"http://hooks.example:{server.server_address[1]}/")
        started = time.monotonic()
        with pytest.raises((OSError, http.client.HTTPException)):
            webhook_http.post(target, "127.0.0.1", b"{}", {}, timeout_s=0.5)
        assert time.monotonic() - started < 2
    finally:
        server.shutdown()
        server.server_close()


def test_settings_check_allow_entries_given_directly_too():
    with pytest.raises(ValueError, match="'not a host!'"):
        Settings(callback_allow=("not a host!",))
    with pytest.raises(ValueError, match="VIDEOEDIT_CALLBACK_RETRY_S -1"):
        Settings(callback_retry_s=-1)
