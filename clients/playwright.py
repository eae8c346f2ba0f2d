#!/usr/bin/env python3
"""A sessionrange client that drives a real browser: Playwright and Debian's Chromium.

Run it under the runner: `sessionrange run SCENARIO -- python3 clients/playwright.py`.
Needs `pip install playwright==1.65.2`, Debian's `chromium` (never a browser
that Playwright downloads) and, for HTTPS scenarios, `libnss3-tools`.

It behaves like a careful browser scraper, learnt from README alone:

- one headless Chromium for the whole run, and one browser context per
  session: a context has its own cookie jar and its own proxy (Playwright's
  per-context proxy), a static exit from SESSIONRANGE_PROXIES or the gateway
  with a fresh sticky id (`user-session-<id>`). A context never changes its
  exit: a dead session gets a new context on the same exit, a failed exit
  (refused, hung, 407, 502, banned) a new context on another one;
- each session visits `/` first (companion cookies; when the page has scripts
  it is given time to finish their requests), then logs in through the HTML
  form at `/login`, solving the proof of work (SHA-256 of `challenge:nonce`
  with `data-bits` leading zero bits) unless a page script fills it in, and
  the TOTP code. A target without form logins (`AUTH_MODE`, or no HTML
  surface) is logged into from the page's own `fetch()`, so every byte still
  leaves through Chromium's network stack, with its cookies and its exit;
- it reads the HTML catalog (`<tr data-id>` rows, cells classed with the
  API's field names, `<a rel="next">`), or with bearer tokens
  `/api/v1/items` (refreshed before they run out), and writes each record
  once to SESSIONRANGE_OUTPUT as a JSON line;
- it recognises every refusal style (redirect to the login page, a 200 login
  form, 401/403 pages, `cf-mitigated: challenge` interstitials, which it
  gives a chance to solve themselves, 429 with Retry-After), waits out
  challenges and rate limits on a live session, drops a dead session at once
  (no request after the one that showed its death) and resumes at the failed
  page;
- it paces requests with jitter (about 5 a second), prefers the account
  with the fewest invalidations for each new login, and stops before the
  deadline;
- it hides the two automation markers of stock headless Chromium
  (`navigator.webdriver` and `HeadlessChrome` in the User-Agent), keeping one
  User-Agent for every context; `--stock` keeps Playwright's defaults.

HTTPS: the run's CA (SESSIONRANGE_CA_CERT) is imported into a throw-away NSS
database under a temporary HOME with `certutil` (Debian `libnss3-tools`),
which Chromium on Linux reads; only when certutil is missing does the client
fall back to `ignore_https_errors=True`, and it says so on stderr.
"""
import asyncio
import base64
import hashlib
import heapq
import hmac
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from urllib.parse import parse_qs, unquote, urlsplit

# This file is named playwright.py, and Python puts its folder first on
# sys.path: drop it, or `import playwright` would import this very script.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

CHROMIUM = "/usr/bin/chromium"
EXPIRY_REASONS = {"SESSION_EXPIRED", "IDLE_TIMEOUT", "MAX_USES", "SESSION_UNKNOWN"}
PACE = (0.14, 0.26)        # seconds between requests of the crawl: about 5 a second
MARGIN = 1.2               # stop this long before the deadline
# Sessions crawling at once, each its own account and context. Two workers in
# one Chromium on a 2-CPU machine were slower than one (each login and page
# load took twice as long), so one; the code shares pages between more.
WORKERS = 1
NAV_TIMEOUT = 6.0          # a navigation slower than this means a hung exit
CHALLENGE_WAIT = 10.0      # how long a page's script may take over a JavaScript challenge
CHROMIUM_ARGS = [
    # Chromium asks Google's autofill servers about every password form it
    # sees, through the context's proxy: a scraper has no business leaking that.
    "--disable-features=AutofillServerCommunication",
    # Automation markers a sensor script reads: no `navigator.webdriver`.
    "--disable-blink-features=AutomationControlled",
]


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
        proxy["username"], proxy["password"] = unquote(user), unquote(parts.password or "")
    return proxy


class Exits:
    """The exits a session may be born on; a session keeps its exit for life."""

    COOLDOWN = 5.0   # a failed static exit rests this long before it is tried again

    def __init__(self, env):
        self.static = list(env.proxies)
        self.gateway = env.gateway
        self.resting = {}          # static exit index -> time it may be tried again
        self.gateway_faults = 0

    def pick(self, preferred=0):
        """The exit for a new session: (name, Playwright proxy dict or None, exit index)."""
        if self.static:
            index = self.pick_static(preferred)
            return f"exit{index}", playwright_proxy(self.static[index]), index
        if self.gateway:
            sticky = f"pw{random.randrange(16**8):08x}"
            return f"sticky-{sticky}", playwright_proxy(self.gateway, sticky), preferred
        return "direct", None, preferred

    def pick_static(self, preferred):
        """The preferred exit while it is healthy, else the next healthy one."""
        now = time.time()
        order = [(preferred + k) % len(self.static) for k in range(len(self.static))]
        healthy = [i for i in order if self.resting.get(i, 0) <= now]
        if not healthy:   # every exit failed lately: retry the one that rested longest
            return min(order, key=lambda i: self.resting[i])
        return healthy[0]

    def failed(self, name):
        """An exit fault: a static exit rests, the gateway gets a new sticky id anyway."""
        if self.static and name.startswith("exit"):
            self.resting[int(name[4:])] = time.time() + self.COOLDOWN
        else:
            self.gateway_faults += 1

    def healthy(self, name):
        if self.static and name.startswith("exit"):
            return self.resting.get(int(name[4:]), 0) <= time.time()
        return True

    def exhausted(self):
        return not self.static and self.gateway_faults > 8


class Accounts:
    """Which account logs in next: the fewest invalidations, then the least recently used."""

    def __init__(self, accounts):
        self.all = accounts
        self.invalidations = {a["username"]: 0 for a in accounts}
        self.last_used = {a["username"]: 0.0 for a in accounts}
        self.refused = set()
        self.in_use = set()

    def pick(self):
        """An account no other worker is using, or None."""
        usable = [a for a in self.all if a["username"] not in self.refused | self.in_use]
        if not usable:
            return None
        key = lambda a: (self.invalidations[a["username"]], self.last_used[a["username"]])
        account = min(usable, key=key)
        self.last_used[account["username"]] = time.time()
        self.in_use.add(account["username"])
        return account

    def release(self, account):
        self.in_use.discard(account["username"])

    def died(self, account, dead):
        if dead.security:
            self.invalidations[account["username"]] += 1


class Pacer:
    """Jittered spacing between one worker's requests (a worker is one account at a time)."""

    def __init__(self):
        self.last = 0.0

    async def wait(self, env, idle=None):
        """Sleep out the gap; `idle` (which starts preparing the next context) first."""
        due = self.last + random.uniform(*PACE)
        if idle is not None:
            idle()
        gap = due - time.time()
        if gap > 0:
            await asyncio.sleep(max(0.0, min(gap, env.left())))
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
    secret = secret.replace(" ", "").upper()
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
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


def records(rows):
    """Catalog rows as the API's records: integer `id` and `stock`, the rest as text."""
    for record in rows:
        record["id"] = int(record["id"])
        if str(record.get("stock", "")).strip().isdigit():
            record["stock"] = int(record["stock"])
    return rows


def page_number(href):
    """The `page` of a next link, or None at the end."""
    query = parse_qs(urlsplit(href or "").query)
    return int(query["page"][0]) if "page" in query else None


def is_challenge(response):
    return response is not None and response.headers.get("cf-mitigated") == "challenge"


async def body_text(response):
    try:
        return await response.text()
    except PlaywrightError:
        return ""


def reason_in(text):
    """The reason code a refusal names: a known one, else the first CODE_LIKE_THIS."""
    for code in ("ACCOUNT_BANNED", "IP_BANNED", "DIRECT_ACCESS", "AUTH_MODE",
                 "COMPANION_COOKIE_MISSING", "COMPANION_COOKIE_ALTERED",
                 *sorted(EXPIRY_REASONS), "LOGGED_OUT", "SESSION_REVOKED"):
        if code in text:
            return code
    codes = [c for c in re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", text)
             if c != "SESSION_INVALIDATED_SECURITY"]
    return codes[0] if codes else ""


# ---------------------------------------------------------------- one session

class Session:
    """One login in its own browser context, pinned to one exit for its whole life."""

    def __init__(self, env, exit_name, context, page):
        self.context, self.page = context, page
        self.env, self.exit = env, exit_name
        self.in_flight, self.last_network = 0, time.time()
        self.navigations = self.landed_at = 0
        page.on("framenavigated", self.navigated)
        page.on("request", lambda _: self.network(+1))
        page.on("requestfinished", lambda _: self.network(-1))
        page.on("requestfailed", lambda _: self.network(-1))
        self.tokens = None      # JWT mode: the access and refresh tokens
        self.expires = 0.0

    @classmethod
    async def open(cls, browser, env, exit_name, proxy, context_options):
        """A new context (own cookies, own exit) and its one page; nothing is sent yet."""
        options = dict(context_options)
        if proxy:
            options["proxy"] = proxy
        context = await browser.new_context(**options)
        return cls(env, exit_name, context, await context.new_page())

    async def close(self):
        try:
            await self.context.close()
        except PlaywrightError:
            pass

    def timeout_ms(self, limit=NAV_TIMEOUT):
        return max(0.2, min(limit, self.env.left() + MARGIN / 2)) * 1000

    async def goto(self, path):
        """Navigate, as a user typing the address would; a network error is the exit's."""
        try:
            response = await self.page.goto(self.env.target + path, wait_until="load",
                                            timeout=self.timeout_ms())
            self.landed_at = self.navigations   # a script's navigation comes after this
            return response
        except PlaywrightError as e:
            raise ExitFault(str(e).splitlines()[0]) from None

    async def has(self, selector):
        try:
            return await self.page.locator(selector).count() > 0
        except PlaywrightError:     # the page is navigating away
            return False

    def navigated(self, frame):
        if frame == self.page.main_frame:
            self.navigations += 1

    def network(self, change):
        self.in_flight = max(0, self.in_flight + change)
        self.last_network = time.time()

    async def settle(self, limit=2.0, quiet=0.15, scripts=None):
        """Let the page's scripts finish: when it has any, wait until none of its
        requests has been in flight for `quiet` seconds (Playwright's own
        "networkidle" waits 500 ms, longer than some sticky exits live)."""
        if not (await self.has("script") if scripts is None else scripts):
            return
        end = time.time() + max(0.0, min(limit, self.env.left()))
        while time.time() < end:
            if self.in_flight == 0 and time.time() - self.last_network >= quiet:
                return
            await asyncio.sleep(0.02)

    async def landing(self):
        """`/` first, as a visitor arrives: it sets the companion cookies."""
        response = await self.goto("/")
        status = response.status if response else 0
        if is_challenge(response):
            await self.await_challenge()
        elif status in (0, 407, 502, 503, 504):
            raise ExitFault(f"landing page answered {status}")
        elif status == 403:
            reason = reason_in(await body_text(response))
            if reason in ("IP_BANNED", "DIRECT_ACCESS"):
                raise ExitFault(reason)
            raise LoginRetry(f"landing page refused: {reason}", 1.0)
        await self.settle()

    # ------------------------------------------------------------ the form login

    FORM_JS = """form => ({
        challenge: form.pow_challenge ? form.pow_challenge.value : null,
        bits: form.pow_challenge ? form.pow_challenge.dataset.bits : null,
        nonce: form.pow_nonce ? form.pow_nonce.value : null,
        totp: !!form.totp,
        scripts: document.scripts.length,
    })"""

    SUBMIT_JS = """(form, values) => {
        for (const [name, value] of Object.entries(values)) {
            const field = form.elements.namedItem(name);
            if (!field) continue;
            field.value = value;
            field.dispatchEvent(new Event('input', {bubbles: true}));
        }
        form.requestSubmit();
    }"""

    async def login(self, account, site):
        """Log in through the HTML form; the JWT API from the page when the site wants it."""
        if site.jwt:
            return await self.api_login(account, site)
        response = await self.goto("/login")
        if is_challenge(response):
            await self.await_challenge()
        if response is not None and response.status == 404:
            raise JwtOnly()     # no HTML surface: the JSON API is the way in
        form = self.page.locator("form#login-form")
        fields = await self.form_fields(form)
        if fields is None:
            status = response.status if response else "none"
            if status in (407, 502, 504, "none"):
                raise ExitFault(f"no login form ({status})")
            raise LoginRetry(f"no login form ({status})", 1.0)
        await self.settle(scripts=fields["scripts"] > 0)
        values = await self.form_values(form, fields, account, site)
        try:
            async with self.page.expect_navigation(timeout=self.timeout_ms()) as nav:
                # the browser encodes and posts the form, as a click would
                await form.evaluate(self.SUBMIT_JS, values)
            response = await nav.value
        except PlaywrightError as e:
            raise ExitFault("login submit: " + str(e).splitlines()[0]) from None
        self.login_outcome(response.status, response.headers, await body_text(response))
        if urlsplit(self.page.url).path == "/login":
            raise LoginRetry("still on the login page", 0.2)

    async def form_fields(self, form):
        """What the login form asks for, or None when the page has no login form."""
        try:
            return await form.evaluate(self.FORM_JS, timeout=1000)
        except PlaywrightError:
            return None

    async def form_values(self, form, fields, account, site):
        """What to type into the form: credentials, the proof of work, the TOTP code."""
        if fields["challenge"] is not None and not fields["nonce"] and fields["scripts"]:
            try:    # a page script may be solving it: give it a moment
                await self.page.wait_for_function(
                    "() => document.querySelector('form#login-form [name=pow_nonce]').value",
                    timeout=self.timeout_ms(3.0))
                fields = await form.evaluate(self.FORM_JS)
            except PlaywrightError:
                pass
        site.pow, site.totp = fields["challenge"] is not None, fields["totp"]
        values = {"username": account["username"], "password": account["password"]}
        if fields["challenge"] is not None and not fields["nonce"]:
            # No page script filled the nonce in: do the work (README's format).
            values["pow_nonce"] = solve_pow(fields["challenge"], int(fields["bits"] or 16))
        if fields["totp"] and account.get("totp_secret"):
            values["totp"] = totp(account["totp_secret"])
        return values

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

    # ------------------------------------------------------------ JWT from the page

    FETCH_JS = """async ([path, method, body, bearer]) => {
        const headers = {accept: 'application/json'};
        if (body !== null) headers['content-type'] = 'application/json';
        if (bearer) headers['authorization'] = 'Bearer ' + bearer;
        const init = {method, headers};
        if (body !== null) init.body = JSON.stringify(body);
        const r = await fetch(path, init);
        return {status: r.status, headers: Object.fromEntries(r.headers), text: await r.text()};
    }"""

    async def fetch(self, path, method="GET", body=None, bearer=None):
        """A fetch() run by the page itself: Chromium's stack, cookies and exit."""
        try:
            return await self.page.evaluate(self.FETCH_JS, [path, method, body, bearer])
        except PlaywrightError as e:
            raise ExitFault("fetch: " + str(e).splitlines()[0]) from None

    async def api_login(self, account, site):
        """`POST /api/login` from the page; a step it asks for is learnt and added."""
        for _ in range(3):
            r = await self.fetch("/api/login", "POST", await self.api_credentials(account, site))
            wants_pow = r["status"] == 401 and "pow" in r["text"].lower() and not site.pow
            wants_totp = r["status"] == 401 and "totp" in r["text"].lower() and not site.totp
            if not (wants_pow or wants_totp):
                break
            site.pow, site.totp = site.pow or wants_pow, site.totp or wants_totp
        self.login_outcome(r["status"], r["headers"], r["text"])
        self.take(json.loads(r["text"]))

    async def api_credentials(self, account, site):
        body = {"username": account["username"], "password": account["password"]}
        if site.pow:
            r = await self.fetch("/api/login/challenge")
            if r["status"] == 200:
                challenge = json.loads(r["text"])
                body["pow_challenge"] = challenge["challenge"]
                body["pow_nonce"] = solve_pow(challenge["challenge"], int(challenge["bits"]))
        if site.totp and account.get("totp_secret"):
            body["totp"] = totp(account["totp_secret"])
        return body

    def take(self, tokens):
        self.tokens = tokens
        payload = tokens["access_token"].split(".")[1]
        payload += "=" * (-len(payload) % 4)
        self.expires = json.loads(base64.urlsafe_b64decode(payload))["exp"]

    async def refresh(self):
        """Rotate the pair before the access token runs out (one worker: one refresh)."""
        body = {"refresh_token": self.tokens["refresh_token"]}
        r = await self.fetch("/api/token/refresh", "POST", body)
        if r["status"] != 200:
            delay = await self.judge(r["status"], r["headers"], r["text"])
            await asyncio.sleep(max(0.0, min(delay, self.env.left())))
            return
        self.take(json.loads(r["text"]))

    async def items(self, page_no):
        """One page of `/api/v1/items`: (records, next page) or a delay to wait."""
        if self.expires - time.time() < 0.5:
            await self.refresh()
        r = await self.fetch(f"/api/v1/items?page={page_no}", bearer=self.tokens["access_token"])
        is_json = r["headers"].get("content-type", "").startswith("application/json")
        if r["status"] == 200 and is_json:
            body = json.loads(r["text"])
            return body["items"], body.get("next")
        delay = await self.judge(r["status"], r["headers"], r["text"])
        return delay, page_no

    # ------------------------------------------------------------ the HTML catalog

    PAGE_JS = """() => {
        const table = document.querySelector('table#catalog');
        const next = document.querySelector('a[rel=next]');
        const record = tr => {
            const fields = {id: tr.dataset.id};
            for (const td of tr.querySelectorAll('td[class]')) {
                fields[td.className] = td.textContent.trim();
            }
            return fields;
        };
        return {
            rows: table ? [...table.querySelectorAll('tr[data-id]')].map(record) : null,
            next: next ? next.getAttribute('href') : null,
            login_form: !!document.querySelector('form#login-form'),
            scripts: document.scripts.length,
        };
    }"""

    async def summary(self):
        """The page read in one go: catalog rows, next link, login form, scripts."""
        for _ in range(3):
            try:
                return await self.page.evaluate(self.PAGE_JS)
            except PlaywrightError:     # navigating away: read the next document
                await asyncio.sleep(0.1)
        return {"rows": None, "next": None, "login_form": False, "scripts": 0}

    async def catalog(self, page_no):
        """One catalog page: (records, next page), or (delay, same page) to try again."""
        response = await self.goto(f"/catalog?page={page_no}")
        if is_challenge(response):
            await self.await_challenge()
        page = await self.summary()
        if page["rows"] is not None:
            await self.settle(limit=1.0, scripts=page["scripts"] > 0)   # a sensor may renew
            return records(page["rows"]), page_number(page["next"])
        if response is None:
            raise ExitFault("no response")
        text = await body_text(response)
        return await self.judge(response.status, response.headers, text, page), page_no

    CHALLENGE_JS = """() => [!!document.querySelector('form#sr-challenge'),
                             document.scripts.length]"""

    async def await_challenge(self):
        """A challenge interstitial may solve itself with a script and navigate on
        (README's JavaScript challenge, `form#sr-challenge`, posts its own proof
        of work): give it time, then let the next page load and settle."""
        try:
            solvable, scripts = await self.page.evaluate(self.CHALLENGE_JS)
        except PlaywrightError:     # already navigating away
            solvable, scripts = True, 1
        if not (solvable or scripts):
            return
        limit = CHALLENGE_WAIT if solvable else 1.5
        end = time.time() + min(limit, max(0.0, self.env.left()))
        while time.time() < end and self.navigations == self.landed_at:
            await asyncio.sleep(0.05)
        if self.navigations == self.landed_at:
            return
        try:
            await self.page.wait_for_load_state("load", timeout=self.timeout_ms())
        except PlaywrightError:
            pass
        self.landed_at = self.navigations
        await self.settle()

    # ------------------------------------------------------------ refusals

    async def judge(self, status, headers, text, page=None):
        """A refusal: return how long to wait before the same request, or raise.
        `page` is the summary of the page a navigation ended on, None for a fetch()."""
        url, fetched = urlsplit(self.page.url), page is None
        if not fetched and (url.path == "/login" or page["login_form"]):
            # redirect-login (?reason=CODE), a 303 for a cleared cookie, or a 200
            # soft-login form: the session is over either way.
            reason = parse_qs(url.query).get("reason", ["LOGIN_PAGE"])[0]
            raise SessionDead(reason, reason not in EXPIRY_REASONS)
        if fetched and 'id="login-form"' in text:
            raise SessionDead("LOGIN_PAGE", True)
        if status in (407, 502, 504):
            raise ExitFault(f"{status} from the proxy")
        if headers.get("cf-mitigated") == "challenge":
            return retry_after(headers, 1.0)
        reason = reason_in(text + " " + headers.get("www-authenticate", ""))
        if status == 429:
            bearer_dead = "invalid_token" in headers.get("www-authenticate", "")
            if "revoked" in text or "ended" in text or bearer_dead:
                raise SessionDead("429 " + reason, True)
            return retry_after(headers)
        if status in (401, 403):
            if reason in ("IP_BANNED", "DIRECT_ACCESS"):
                raise ExitFault(reason)
            expiry = reason in EXPIRY_REASONS or "login_required" in text
            raise SessionDead(reason or str(status), not expiry)
        if status >= 500:
            return 1.0
        raise SessionDead(f"unexpected {status}", False)


# ---------------------------------------------------------------- the crawl

class Site:
    """What the client learnt about the target: login steps, and whether it wants JWTs."""

    def __init__(self):
        self.jwt = False
        self.pow = False
        self.totp = False


class Frontier:
    """The catalog pages to read, shared by the workers.

    A page is handed out only once it is known to exist (an earlier page linked
    to it), so no worker reads past the end; a worker whose session dies gives
    its page back, to be read first by the next live session.
    """

    def __init__(self):
        self.known = 1          # the highest page known to exist
        self.next_new = 1       # the first page no worker has claimed
        self.returned = []      # pages given back by a worker that stopped
        self.busy = set()

    def claim(self):
        if self.returned:
            page_no = heapq.heappop(self.returned)
        elif self.next_new <= self.known:
            page_no, self.next_new = self.next_new, self.next_new + 1
        else:
            return None
        self.busy.add(page_no)
        return page_no

    def done(self, page_no, next_page):
        self.busy.discard(page_no)
        if next_page:
            self.known = max(self.known, int(next_page))

    def give_back(self, page_no):
        self.busy.discard(page_no)
        heapq.heappush(self.returned, page_no)

    def finished(self):
        return not self.returned and not self.busy and self.next_new > self.known


class Run:
    """What the workers share: the browser, the exits, the accounts, the pages, the output."""

    def __init__(self, env, browser, context_options, out):
        self.env, self.browser, self.options, self.out = env, browser, context_options, out
        self.exits, self.accounts = Exits(env), Accounts(env.accounts)
        self.site, self.frontier, self.seen = Site(), Frontier(), set()
        self.login_failures = {}
        self.closing = []       # contexts of dead sessions, closed in the background

    def write(self, records):
        for record in records:
            if record["id"] not in self.seen:
                self.seen.add(record["id"])
                self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def refuse(self, account, why):
        """A banned account is done; a wrong step (TOTP at a window's edge) gets a second try."""
        name = account["username"]
        self.login_failures[name] = self.login_failures.get(name, 0) + 1
        if "ACCOUNT_BANNED" in why or self.login_failures[name] >= 2:
            self.accounts.refused.add(name)


class Worker:
    """Sessions one after another, each in a new context on the worker's exit."""

    def __init__(self, run, index):
        self.run, self.env, self.index = run, run.env, index
        self.pacer, self.page_no = Pacer(), None
        self.spare = None       # a task opening the next session's context
        self.exit_pref = index      # static exits: each worker starts on its own

    async def work(self):
        try:
            while not self.run.frontier.finished() and self.env.left() > 0:
                session, account = await self.open_session()
                if session is None:
                    log(f"worker {self.index}: no exit or account left; stopping")
                    return
                try:
                    await self.crawl(session)
                except SessionDead as dead:
                    log(f"worker {self.index}: session died on page {self.page_no}:"
                        f" {dead.reason}")
                    self.run.accounts.died(account, dead)
                    if dead.reason == "ACCOUNT_BANNED":
                        self.run.accounts.refused.add(account["username"])
                except ExitFault as fault:
                    log(f"worker {self.index}: exit {session.exit} failed"
                        f" on page {self.page_no}: {fault}")
                    self.run.exits.failed(session.exit)
                finally:
                    self.give_back()    # a live worker reads it while this one logs in
                    self.run.accounts.release(account)
                    self.run.closing.append(asyncio.create_task(session.close()))
        finally:
            await self.stop()

    def give_back(self):
        if self.page_no is not None:
            self.run.frontier.give_back(self.page_no)
            self.page_no = None

    async def stop(self):
        self.give_back()
        spare = await self.take_spare()
        if spare is not None:
            await spare.close()

    async def crawl(self, session):
        frontier = self.run.frontier
        while self.env.left() > 0:
            if self.page_no is None:
                await self.pacer.wait(self.env, idle=self.prepare_spare)
                self.page_no = await self.claim()
                if self.page_no is None:
                    return
            if self.env.left() <= 0:
                return
            read = session.items if self.run.site.jwt else session.catalog
            result, next_page = await read(self.page_no)
            if isinstance(result, list):
                self.run.write(result)
                frontier.done(self.page_no, next_page)
                self.page_no = None
            else:   # a challenge or a rate limit on a live session: wait, same page
                log(f"worker {self.index}: page {self.page_no}: waiting {result:.1f}s")
                await asyncio.sleep(max(0.0, min(float(result), 5.0, self.env.left())))
                await self.pacer.wait(self.env)

    async def claim(self):
        """The next page to read, once another worker's page has shown it exists."""
        frontier = self.run.frontier
        while self.env.left() > 0 and not frontier.finished():
            page_no = frontier.claim()
            if page_no is not None:
                return page_no
            await asyncio.sleep(0.02)
        return None

    async def open_session(self):
        """A new context on a healthy exit, landed and logged in: (session, account)."""
        run = self.run
        while self.env.left() > 0 and not run.exits.exhausted() and not run.frontier.finished():
            account = run.accounts.pick()
            if account is None:
                break
            session = await self.take_spare() or await self.new_context()
            try:
                await self.login(session, account)
                log(f"worker {self.index}: logged in as {account['username']} via {session.exit}")
                return session, account
            except ExitFault as fault:
                log(f"worker {self.index}: exit {session.exit} failed at login: {fault}")
                run.exits.failed(session.exit)
                await asyncio.sleep(0.2)
            except AccountRefused as refused:
                log(f"worker {self.index}: account {account['username']} refused: {refused}")
                run.refuse(account, str(refused))
            except LoginRetry as wait:
                log(f"worker {self.index}: login deferred {wait.delay:.1f}s: {wait}")
                await asyncio.sleep(max(0.0, min(wait.delay, 5.0, self.env.left())))
            run.accounts.release(account)
            await session.close()
        return None, None

    async def login(self, session, account):
        started = time.time()
        await session.landing()
        landed = time.time()
        try:
            await session.login(account, self.run.site)
        except JwtOnly:
            log("no form login here (AUTH_MODE or no HTML surface): the JSON API from the page")
            self.run.site.jwt = True
            await session.login(account, self.run.site)
        log(f"worker {self.index}: landing {1000 * (landed - started):.0f} ms, "
            f"login {1000 * (time.time() - landed):.0f} ms")

    async def new_context(self):
        name, proxy, self.exit_pref = self.run.exits.pick(self.exit_pref)
        return await Session.open(self.run.browser, self.env, name, proxy, self.run.options)

    def prepare_spare(self):
        """Open the next session's context in the background (no request is sent)."""
        if self.spare is None:
            self.spare = asyncio.create_task(self.new_context())

    async def take_spare(self):
        """The spare context, unless its exit has failed since it was made."""
        task, self.spare = self.spare, None
        try:
            spare = await task if task is not None else None
        except PlaywrightError:
            return None
        if spare is not None and not self.run.exits.healthy(spare.exit):
            await spare.close()
            spare = None
        return spare


# ---------------------------------------------------------------- HTTPS trust

def tls_options(env, home):
    """(launch options, context options) that make Chromium trust the run's CA."""
    if not env.target.startswith("https://"):
        return {}, {}
    if env.ca_cert and shutil.which("certutil"):
        nssdb = os.path.join(home, ".pki", "nssdb")
        os.makedirs(nssdb)
        db = "sql:" + nssdb
        subprocess.run(["certutil", "-N", "-d", db, "--empty-password"], check=True)
        subprocess.run(["certutil", "-A", "-d", db, "-n", "sessionrange-run-ca",
                        "-t", "C,,", "-i", env.ca_cert], check=True)
        return {"env": {**os.environ, "HOME": home}}, {}
    # Without certutil Chromium has no way to add one CA: fall back to ignoring
    # certificate errors, which also trusts anything else. Said so on stderr.
    log("WARNING: certutil missing: ignore_https_errors=True (the run's CA is not checked)")
    return {}, {"ignore_https_errors": True}


async def browser_user_agent(browser):
    """The browser's own User-Agent without its `HeadlessChrome` marker, for every context."""
    cdp = await browser.new_browser_cdp_session()
    version = await cdp.send("Browser.getVersion")
    return version["userAgent"].replace("HeadlessChrome/", "Chrome/")


def worker_count(env):
    """Two workers when there are two accounts (each its own session), else one."""
    return max(1, min(WORKERS, len(env.accounts)))


# `--stock`: Playwright's own settings, automation markers shown (the
# `automation` scenario must fail it).
STOCK = "--stock" in sys.argv[1:]


async def crawl(env, home, out):
    launch_options, context_options = tls_options(env, home)
    args = CHROMIUM_ARGS[:1] if STOCK else CHROMIUM_ARGS
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=args, **launch_options)
        try:
            if not STOCK:
                context_options["user_agent"] = await browser_user_agent(browser)
            log(f"scenario {env.scenario or '?'}: {env.target}, {len(env.proxies)} static "
                f"exits, gateway {'yes' if env.gateway else 'no'}, {len(env.accounts)} accounts")
            run = Run(env, browser, context_options, out)
            workers = [Worker(run, i) for i in range(worker_count(env))]
            await asyncio.gather(*(w.work() for w in workers))
            await asyncio.gather(*run.closing)
            log(f"done: {len(run.seen)} records")
        finally:
            await browser.close()


def main():
    env = Env()
    home = tempfile.mkdtemp(prefix="sessionrange-pw-")
    try:
        with open(env.output, "w") as out:
            asyncio.run(crawl(env, home, out))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
