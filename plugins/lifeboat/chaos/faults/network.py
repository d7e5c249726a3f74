"""Network faults (DR plan 2.3) between the platform API and a datastore, through toxiproxy's HTTP API:
`latency` (a latency toxic, target.latency_ms), `timeout` (data stops, connections hang) or `down` (the
proxy disabled: connections refused). The platform's /ready probe sees it; the datastore's own write/read
probe (direct, not through the proxy) shows the datastore itself stayed healthy."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from lifeboat.chaos.faults.datastore import DatastoreFault
from lifeboat.errors import Refused

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _call(base: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict | list | None]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with _HTTP.open(req, timeout=5) as r:
            text = r.read()
            return r.status, json.loads(text) if text.strip() else None
    except urllib.error.HTTPError as e:
        return e.code, None


class NetworkFault(DatastoreFault):
    kind = "network"
    probe_weight = 1

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.env.toxiproxy or not self.ds.proxy:
            raise Refused(f"chaos experiment {self.spec.name}: needs chaos.environments.*.toxiproxy and "
                          f"datastores.{self.datastore}.proxy")
        code, _ = _call(self.env.toxiproxy, "GET", f"/proxies/{self.ds.proxy}")
        if code != 200:
            raise Refused(f"chaos experiment {self.spec.name}: toxiproxy {self.env.toxiproxy} has no proxy "
                          f"{self.ds.proxy!r} (HTTP {code})")

    def revert_info(self) -> dict:
        return {"toxiproxy": self.env.toxiproxy, "proxy": self.ds.proxy, "toxic": f"lifeboat-{self.record_id}"[:60]}

    def inject(self) -> str:
        toxic, base, proxy = self.spec.target["toxic"], self.env.toxiproxy, self.ds.proxy
        if toxic == "down":
            code, _ = _call(base, "POST", f"/proxies/{proxy}", {"enabled": False})
            what = "proxy disabled (connections refused)"
        else:
            attrs = ({"latency": int(self.spec.target.get("latency_ms", 1500)), "jitter": 0} if toxic == "latency"
                     else {"timeout": 0})
            code, _ = _call(base, "POST", f"/proxies/{proxy}/toxics",
                            {"name": self.info["toxic"], "type": toxic, "stream": "downstream", "toxicity": 1.0,
                             "attributes": attrs})
            what = f"{toxic} toxic {attrs}"
        if code != 200:
            raise RuntimeError(f"toxiproxy {base}: injecting {toxic} on {proxy} failed: HTTP {code}")
        return f"{proxy}: {what}"

    @staticmethod
    def revert(info: dict) -> str:
        base, proxy = info["toxiproxy"], info["proxy"]
        gone, _ = _call(base, "DELETE", f"/proxies/{proxy}/toxics/{info['toxic']}")
        code, _ = _call(base, "POST", f"/proxies/{proxy}", {"enabled": True})
        if code != 200:
            raise RuntimeError(f"toxiproxy {base}: re-enabling {proxy} failed: HTTP {code}")
        return f"{proxy}: toxic {'removed' if gone in (200, 204) else 'absent'}, proxy enabled"
