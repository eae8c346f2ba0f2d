#!/usr/bin/env python3
"""A minimal sessionrange client: one account, one exit, every page once."""
import json, os, random, time
import requests

target = os.environ["SESSIONRANGE_TARGET"]
proxies = [p for p in os.environ.get("SESSIONRANGE_PROXIES", "").split(",") if p]
account = json.load(open(os.environ["SESSIONRANGE_ACCOUNTS"]))[0]

s = requests.Session()
if proxies:  # pin the session to one exit for its whole life
    s.proxies = {"http": proxies[0], "https": proxies[0]}
tok = s.post(f"{target}/api/login", json={"username": account["username"],
                                          "password": account["password"]}).json()
s.headers["Authorization"] = "Bearer " + tok["access_token"]

with open(os.environ["SESSIONRANGE_OUTPUT"], "w") as out:
    page = 1
    while page:
        r = s.get(f"{target}/api/v1/items", params={"page": page})
        r.raise_for_status()  # a refusal ends this minimal client
        body = r.json()
        for item in body["items"]:
            out.write(json.dumps(item) + "\n")
        page = body["next"]
        time.sleep(random.uniform(0.15, 0.35))  # human-ish pacing
