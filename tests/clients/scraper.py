#!/usr/bin/env python3
"""A scraper written from README alone, with switches that each ignore one trap.

Without switches it is a careful API client: it visits `/` for the companion
cookies, logs in through one exit (a static proxy, or a sticky gateway
session per login), paces itself, refreshes its JWT once before it runs out,
logs in again on a fresh exit when a session dies and resumes at the failed
page. Each switch makes one mistake a real scraper makes; tests/matrix.rs
checks that the scenario built for it fails it and names the cause.
"""
import argparse
import base64
import hashlib
import json
import os
import random
import re
import sys
import time

import requests

MISTAKES = [
    "direct",             # connect straight to the target, not through the pool
    "api-no-cookies",     # log in through the API without visiting / first
    "no-refresh",         # never refresh: log in again when the access token runs out
    "no-relogin",         # stop at the first dead session
    "no-pacing",          # as fast as possible
    "reuse-after-stall",  # present an idled-out session three more times
    "login-per-page",     # log in again before every page
    "rotate-user-agent",  # a new User-Agent on every request
]
# Not a mistake: compute the page sensor and solve the JavaScript challenge
# as README says, the way scrapers reimplement a vendor's script.
SKILLS = ["reimplement-js"]

parser = argparse.ArgumentParser()
for flag in MISTAKES + SKILLS:
    parser.add_argument("--" + flag, action="store_true")
ARGS = parser.parse_args()

TARGET = os.environ["SESSIONRANGE_TARGET"]
PROXIES = [p for p in os.environ.get("SESSIONRANGE_PROXIES", "").split(",") if p]
GATEWAY = os.environ.get("SESSIONRANGE_GATEWAY", "")
ACCOUNTS = json.load(open(os.environ["SESSIONRANGE_ACCOUNTS"]))
DEADLINE = float(os.environ["SESSIONRANGE_DEADLINE"]) - 0.5


class Dead(Exception):
    """The session is over: log in again."""


def log(*parts):
    print("scraper:", *parts, file=sys.stderr, flush=True)


def exit_url(n):
    """The n-th exit: the static proxies in turn, else a new sticky gateway session."""
    if ARGS.direct:
        return None
    if PROXIES:
        return PROXIES[n % len(PROXIES)]
    if GATEWAY:
        scheme, rest = GATEWAY.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user, password = creds.split(":", 1)
        return f"{scheme}://{user}-session-s{n}-{random.randrange(10**6)}:{password}@{host}"
    return None


def token_expiry(token):
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))["exp"]


class Session:
    """One login: its cookies, its exit and its tokens."""

    def __init__(self, account, proxy):
        self.http = requests.Session()
        self.http.headers["User-Agent"] = "scraper/1.0 (+README)"
        if proxy:
            self.http.proxies = {"http": proxy, "https": proxy}
        self.http.verify = os.environ.get("SESSIONRANGE_CA_CERT") or True
        if not ARGS.api_no_cookies:
            landing = self.http.get(TARGET + "/", timeout=10)
            if ARGS.reimplement_js:
                self.sensor(landing.text)
        creds = {"username": account["username"], "password": account["password"]}
        r = self.http.post(TARGET + "/api/login", json=creds, timeout=10)
        if ARGS.reimplement_js and r.status_code == 403 and "CLEARANCE_REQUIRED" in r.text:
            self.solve_challenge()
            r = self.http.post(TARGET + "/api/login", json=creds, timeout=10)
        if r.status_code != 200:
            raise RuntimeError(f"login refused: {r.status_code} {r.text[:120]!r}")
        self.take(r.json())

    def sensor(self, page):
        """Sets `_sr_px` as the page's script would: README, "The page sensor"."""
        nonce = re.search(r'id="sr-sensor"[^>]*data-nonce="([^"]+)"', page)
        if not nonce:
            return
        signals = {"ua": self.http.headers["User-Agent"], "languages": "en-US,en",
                   "webdriver": False, "timezone": "UTC", "screen": "1920x1080", "plugins": 3}
        text = json.dumps(signals, separators=(",", ":")).encode()
        payload = base64.urlsafe_b64encode(text).rstrip(b"=").decode()
        proof = hashlib.sha256(f"{nonce.group(1)}:{payload}".encode()).hexdigest()
        self.http.cookies.set("_sr_px", f"{payload}.{proof}")

    def solve_challenge(self):
        """Solves the JavaScript challenge the login form answers with."""
        page = self.http.get(TARGET + "/login", timeout=10).text
        challenge = re.search(r'name="challenge" value="([0-9a-f]+)"', page).group(1)
        bits = int(re.search(r'data-bits="(\d+)"', page).group(1))
        nonce = 0
        while int.from_bytes(hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()[:4], "big") >> (32 - bits):
            nonce += 1
        answer = {"challenge": challenge, "nonce": str(nonce), "back": "/login"}
        self.http.post(TARGET + "/_sr/challenge", data=answer, timeout=10, allow_redirects=False)

    def take(self, tokens):
        self.access, self.refresh = tokens["access_token"], tokens["refresh_token"]
        self.expires = token_expiry(self.access)

    def renew(self):
        r = self.http.post(TARGET + "/api/token/refresh", json={"refresh_token": self.refresh}, timeout=10)
        if r.status_code != 200:
            raise Dead(f"refresh refused: {r.status_code}")
        self.take(r.json())

    def page(self, n):
        if self.expires - time.time() < 0.4 and not ARGS.no_refresh:
            self.renew()
        headers = {"Authorization": "Bearer " + self.access}
        if ARGS.rotate_user_agent:
            headers["User-Agent"] = f"scraper/1.{random.randrange(1000)}"
        r = self.http.get(f"{TARGET}/api/v1/items", params={"page": n}, headers=headers,
                          timeout=10, allow_redirects=False)
        if r.status_code == 429 and '"revoked"' not in r.text:
            time.sleep(min(float(r.headers.get("Retry-After", "1")), 3))
            return self.page(n)
        if r.status_code == 200 and r.headers.get("content-type", "").startswith("application/json"):
            return r.json()
        raise Dead(f"{r.status_code} {r.text[:80]!r}")


def crawl(out):
    accounts, exits, page, session = 0, 0, 1, None
    while page and time.time() < DEADLINE:
        try:
            if session is None or ARGS.login_per_page:
                session = Session(ACCOUNTS[accounts % len(ACCOUNTS)], exit_url(exits))
            body = session.page(page)
            for item in body["items"]:
                out.write(json.dumps(item) + "\n")
            out.flush()
            page = body["next"]
        except Dead as dead:
            log("session dead on page", page, dead)
            if ARGS.reuse_after_stall and "IDLE_TIMEOUT" in str(dead):
                for _ in range(3):
                    try:
                        session.page(page)
                    except Dead:
                        pass
            if ARGS.no_relogin:
                return
            session, accounts, exits = None, accounts + 1, exits + 1
        except requests.RequestException as e:
            log("exit failed:", type(e).__name__)
            session, exits = None, exits + 1
        if not ARGS.no_pacing:
            time.sleep(random.uniform(0.2, 0.35))


with open(os.environ["SESSIONRANGE_OUTPUT"], "w") as out:
    crawl(out)
