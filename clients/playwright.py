#!/usr/bin/env python3
"""A sessionrange client that drives a real browser: Playwright and Debian's Chromium.

It behaves like a careful browser scraper, learnt from README alone:

- one headless Chromium (`/usr/bin/chromium`, never a downloaded one) for the
  whole run, and one browser context per session: a context has its own
  cookie jar and its own proxy (Playwright's per-context proxy), a static
  exit from SESSIONRANGE_PROXIES or the gateway with a fresh sticky id; a
  context never changes its exit, and a dead session or a dead exit gets a
  new context, never an old session carried somewhere else;
- each session visits `/` first (companion cookies; scripts run, and the page
  is given time to go network-idle when it has any), then logs in through the
  HTML form at `/login`, solving the proof of work (SHA-256 of
  `challenge:nonce` with `data-bits` leading zero bits) and the TOTP code when
  the form asks; a target that refuses form logins (`AUTH_MODE`, JWT only) is
  logged into from the page's own `fetch()` instead, so every byte still
  leaves through Chromium's network stack;
- it reads the HTML catalog (`<tr data-id>` rows, cells classed with the
  API's field names, `<a rel="next">`), or in JWT mode `/api/v1/items`, and
  writes each record once to SESSIONRANGE_OUTPUT as a JSON line;
- it recognises every refusal style (redirect to the login page, a 200 login
  form, 401/403 block pages, `cf-mitigated: challenge` interstitials, 429
  with Retry-After), waits out challenges and rate limits on a live session,
  drops a dead session at once (no request after the one that showed its
  death) and resumes at the failed page in a new context;
- it paces requests with jitter (about 4 a second), prefers the account with
  the fewest invalidations for each new login, and stops before the deadline.

HTTPS: the run's CA (SESSIONRANGE_CA_CERT) is imported into a throw-away NSS
database under a temporary HOME with `certutil` (Debian `libnss3-tools`), which
Chromium on Linux reads; only when certutil is missing does the client fall
back to `ignore_https_errors=True`, and it says so on stderr.
"""
import base64
import hashlib
import hmac
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from urllib.parse import parse_qs, quote, urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
EXPIRY_REASONS = {"SESSION_EXPIRED", "IDLE_TIMEOUT", "MAX_USES", "SESSION_UNKNOWN"}
PACE = (0.2, 0.3)          # seconds between requests of the crawl: about 4 a second
MARGIN = 1.2               # stop this long before the deadline
NAV_TIMEOUT = 6.0          # a navigation slower than this means a hung exit


def log(*parts):
    print("playwright-client:", *parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- outcomes

class SessionDead(Exception):
    """The session is over: drop its context, log in again in a new one."""

    def __init__(self, reason, security=True):
        super().__init__(reason)
        self.reason, self.security = reason, security


class ExitFault(Exception):
    """The exit failed (refused, hung, 407/502, banned): use another exit."""


class AccountRefused(Exception):
    """This account cannot log in (wrong credentials or banned)."""


class LoginRetry(Exception):
    """The login was refused for now (429/503): wait `delay` seconds."""

    def __init__(self, reason, delay):
        super().__init__(reason)
        self.delay = delay


class JwtOnly(Exception):
    """The target refuses form logins (AUTH_MODE): use the API from the page."""


# ---------------------------------------------------------------- environment

class Env:
    """What the runner gives the client, from SESSIONRANGE_* variables."""

    def __init__(self):
        e = os.environ
        self.target = e["SESSIONRANGE_TARGET"].rstrip("/")
        self.proxies = [p for p in e.get("SESSIONRANGE_PROXIES", "").split(",") if p]
        self.gateway = e.get("SESSIONRANGE_GATEWAY", "")
        with open(e["SESSIONRANGE_ACCOUNTS"]) as f:
            self.accounts = json.load(f)
        self.output = e["SESSIONRANGE_OUTPUT"]
        self.ca_cert = e.get("SESSIONRANGE_CA_CERT", "")
        self.scenario = e.get("SESSIONRANGE_SCENARIO", "")
        self.deadline = float(e.get("SESSIONRANGE_DEADLINE", time.time() + 15)) - MARGIN

    def left(self):
        return self.deadline - time.time()


def playwright_proxy(url, sticky_id=None):
    """A proxy URL `http://user:pass@host:port` as Playwright's proxy dict."""
    parts = urlsplit(url)
    proxy = {"server": f"{parts.scheme}://{parts.hostname}:{parts.port}"}
    if parts.username is not None:
        user = parts.username
        if sticky_id:
            user = f"{user}-session-{sticky_id}"
        proxy["username"], proxy["password"] = user, parts.password or ""
    return proxy


class Exits:
    """The exits a session may be born on; a session keeps its exit for life."""

    def __init__(self, env):
        self.static = list(env.proxies)
        self.gateway = env.gateway
        self.dead = set()
        self.current = 0
        self.gateway_faults = 0

    def pick(self):
        """The exit for a new session: (name, Playwright proxy dict or None)."""
        if self.static:
            alive = [i for i in range(len(self.static)) if i not in self.dead]
            if not alive:
                return None
            if self.current not in alive:
                self.current = alive[0]
            return f"exit{self.current}", playwright_proxy(self.static[self.current])
        if self.gateway:
            sticky = f"pw{random.randrange(16**8):08x}"
            return f"sticky {sticky}", playwright_proxy(self.gateway, sticky)
        return "direct", None

    def failed(self, name):
        """An exit fault: a static exit is not used again, the gateway is retried."""
        if self.static:
            self.dead.add(self.current)
            log("exit", name, "failed; healthy exits left:", len(self.static) - len(self.dead))
        else:
            self.gateway_faults += 1

    def exhausted(self):
        if self.static:
            return len(self.dead) == len(self.static)
        return self.gateway_faults > 8


class Accounts:
    """Which account logs in next: the fewest invalidations, then the least recently used."""

    def __init__(self, accounts):
        self.all = accounts
        self.invalidations = {a["username"]: 0 for a in accounts}
        self.last_used = {a["username"]: 0.0 for a in accounts}
        self.refused = set()

    def pick(self):
        usable = [a for a in self.all if a["username"] not in self.refused]
        if not usable:
            return None
        key = lambda a: (self.invalidations[a["username"]], self.last_used[a["username"]])
        account = min(usable, key=key)
        self.last_used[account["username"]] = time.time()
        return account

    def died(self, account, dead):
        if dead.security:
            self.invalidations[account["username"]] += 1


class Pacer:
    """Jittered spacing between requests, so no session runs near a rate limit."""

    def __init__(self):
        self.last = 0.0

    def wait(self, env):
        gap = random.uniform(*PACE) - (time.time() - self.last)
        if gap > 0:
            time.sleep(max(0.0, min(gap, env.left())))
        self.last = time.time()


# ---------------------------------------------------------------- login steps

def solve_pow(challenge, bits):
    """The nonce whose SHA-256 of `challenge:nonce` starts with `bits` zero bits."""
    nonce = 0
    while True:
        digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
        if int.from_bytes(digest, "big") >> (256 - bits) == 0:
            return str(nonce)
        nonce += 1


def totp(secret, now=None):
    """RFC 6238: SHA-1, 6 digits, 30 s steps, base32 secret."""
    key = base64.b32decode(secret.replace(" ", "").upper() + "=" * (-len(secret) % 8))
    counter = int(now or time.time()) // 30
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 15
    code = (struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


def retry_after(headers, default=1.0):
    try:
        return float(headers.get("retry-after", default))
    except ValueError:
        return default


def body_text(response):
    try:
        return response.text()
    except PlaywrightError:
        return ""


def reason_in(text):
    """The first reason code named in a refusal body."""
    for code in ("ACCOUNT_BANNED", "IP_BANNED", "DIRECT_ACCESS", "AUTH_MODE",
                 "COMPANION_COOKIE_MISSING", "COMPANION_COOKIE_ALTERED",
                 *sorted(EXPIRY_REASONS), "LOGGED_OUT", "SESSION_REVOKED"):
        if code in text:
            return code
    return ""


# ---------------------------------------------------------------- one session

class Session:
    """One login in its own browser context, pinned to one exit for its whole life."""

    def __init__(self, browser, env, exit_name, proxy, context_options):
        options = dict(context_options)
        if proxy:
            options["proxy"] = proxy
        self.context = browser.new_context(**options)
        self.page = self.context.new_page()
        self.env, self.exit = env, exit_name
        self.tokens = None      # JWT mode: the access and refresh tokens
        self.expires = 0.0

    def close(self):
        try:
            self.context.close()
        except PlaywrightError:
            pass

    def timeout_ms(self, limit=NAV_TIMEOUT):
        return max(0.2, min(limit, self.env.left() + MARGIN / 2)) * 1000

    def goto(self, path):
        """Navigate, as a user typing the address would; a network error is the exit's."""
        try:
            return self.page.goto(self.env.target + path, wait_until="load",
                                  timeout=self.timeout_ms())
        except PlaywrightError as e:
            raise ExitFault(str(e).splitlines()[0]) from None

    def has(self, selector):
        try:
            return self.page.locator(selector).count() > 0
        except PlaywrightError:     # the page is navigating away
            return False

    def settle(self, limit=2.0):
        """Let the page's scripts finish: wait for network idle when it has any."""
        if not self.has("script"):
            return
        try:
            self.page.wait_for_load_state("networkidle", timeout=self.timeout_ms(limit))
        except PlaywrightError:
            pass

    def landing(self):
        """`/` first, as a visitor arrives: it sets the companion cookies."""
        response = self.goto("/")
        status = response.status if response else 0
        if status in (0, 407, 502, 503, 504):
            raise ExitFault(f"landing page answered {status}")
        if status == 403:
            raise ExitFault(reason_in(body_text(response)) or "landing page refused")
        self.settle()

    # ------------------------------------------------------------ the form login

    def login(self, account, site):
        """Log in through the HTML form; the JWT API from the page when the site wants it."""
        if site.jwt:
            return self.api_login(account, site)
        response = self.goto("/login")
        if response is None or response.status == 404 or not self.has("form#login-form"):
            raise ExitFault(f"no login form ({response.status if response else 'none'})")
        self.settle()
        site.learn(self.page)
        self.fill_form(account)
        try:
            with self.page.expect_navigation(wait_until="load", timeout=self.timeout_ms()) as nav:
                self.page.locator("form#login-form [type=submit]").first.click()
            response = nav.value
        except PlaywrightError as e:
            raise ExitFault("login submit: " + str(e).splitlines()[0]) from None
        self.login_outcome(response.status, response.headers, body_text(response))
        if urlsplit(self.page.url).path == "/login":
            raise LoginRetry("still on the login page", 0.2)

    def fill_form(self, account):
        form = self.page.locator("form#login-form")
        form.locator("[name=username]").fill(account["username"])
        form.locator("[name=password]").fill(account["password"])
        challenge = form.locator("[name=pow_challenge]")
        nonce = form.locator("[name=pow_nonce]")
        if challenge.count() and nonce.count() and not nonce.input_value():
            # No page script filled it in: do the work ourselves (README's format).
            bits = int(challenge.get_attribute("data-bits") or 16)
            nonce.fill(solve_pow(challenge.get_attribute("value"), bits))
        code = form.locator("[name=totp]")
        if code.count() and account.get("totp_secret"):
            code.fill(totp(account["totp_secret"]))

    @staticmethod
    def login_outcome(status, headers, text):
        """Raise for any login answer that is not a new session."""
        if status in (200, 201, 204, 303):
            return
        reason = reason_in(text)
        if status in (429, 503):
            raise LoginRetry(f"{status} {reason}", retry_after(headers))
        if status in (407, 502, 504):
            raise ExitFault(f"login answered {status}")
        if reason == "AUTH_MODE":
            raise JwtOnly()
        if reason == "ACCOUNT_BANNED":
            raise AccountRefused(reason)
        if reason in ("IP_BANNED", "DIRECT_ACCESS"):
            raise ExitFault(reason)
        if status == 401:
            raise AccountRefused(f"401 {text[:80]!r}")
        raise LoginRetry(f"login refused: {status} {reason}", 0.3)
