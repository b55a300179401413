#!/usr/bin/env python3
"""Compares what an etcd holds under a prefix with an expected dump (the
output of `apisix-operator translate`), through etcd's JSON gateway, so the
cluster tests need no etcd client:

    etcd_keys.py equal ENDPOINT PREFIX WANT.json   exit 0 when equal, else 1
                                                   and the keys that differ
    etcd_keys.py count ENDPOINT PREFIX             how many keys it holds

Stored values are compared without `create_time`/`update_time`, which the
operator stamps when it writes (translation does not).
"""

import base64
import json
import sys
import urllib.request


def stored(endpoint, prefix):
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    body = json.dumps({
        "key": base64.b64encode(prefix.encode()).decode(),
        "range_end": base64.b64encode(end.encode()).decode(),
    }).encode()
    request = urllib.request.Request(f"{endpoint}/v3/kv/range", data=body)
    with urllib.request.urlopen(request, timeout=5) as response:
        reply = json.load(response)
    values = {}
    for kv in reply.get("kvs", []):
        value = json.loads(base64.b64decode(kv["value"]))
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in ("create_time", "update_time")}
        values[base64.b64decode(kv["key"]).decode()] = value
    return values


def main():
    command, endpoint, prefix = sys.argv[1:4]
    have = stored(endpoint, prefix)
    if command == "count":
        print(len(have))
        return 0
    with open(sys.argv[4]) as handle:
        want = json.load(handle)
    differ = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
    for key in differ:
        state = "missing" if key not in have else "unexpected" if key not in want else "differs"
        print(f"{state}: {key}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
