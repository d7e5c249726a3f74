"""The platform's CloudFront distribution with failover origin groups, on the stack's moto (stdlib only).

moto keeps CloudFront in memory, so `up` creates the distribution whenever the running moto lacks it
(found by its Comment). Layout, as in production except where moto differs (see docs/datastores/cdn.md):

    origins        api-us-west-2, api-us-east-1          custom origins api.<region>.community.example.com
                   uploads-us-west-2, uploads-us-east-1  S3 origins community-uploads-<region>.s3.<region>.amazonaws.com
    origin groups  api-failover      primary api-us-west-2,     failover api-us-east-1
                   uploads-failover  primary uploads-us-west-2, failover uploads-us-east-1
                   failover criteria: 500, 502, 503, 504
    behaviors      /api/*     -> api-failover
                   /uploads/* -> uploads-failover
                   default    -> api-us-west-2  (moto refuses an origin group as the default behavior's
                                                 target -- NoSuchOrigin -- real CloudFront accepts it)

Exports LIFEBOAT_CDN_DISTRIBUTION_ID, LIFEBOAT_CDN_DOMAIN, AIRFLOW_CONN_LIFEBOAT_CLOUDFRONT (aws
connection with endpoint_url = the stack's moto), LIFEBOAT_CDN_ALLOW_DIRECT_DEFAULT=true and
LIFEBOAT_CDN_SCRATCH_DISTRIBUTION=true (the inventory's cdn options for the local stack).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from xml.sax.saxutils import escape

from devstack.components import _common  # loaded by stack.py as a package module, never run as a script

NAME = "cdn"
REGIONS = ("us-west-2", "us-east-1")  # primary, standby
COMMENT = "Community Platform CDN (lifeboat devstack)"
CALLER_REFERENCE = "lifeboat-devstack-community-cdn"
FAILOVER_STATUS_CODES = (500, 502, 503, 504)
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"  # AWS managed cache policy id
API = "/2020-05-31"
_NS = "http://cloudfront.amazonaws.com/doc/2020-05-31/"
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _error(message: str, log: Path | None = None, detail: str = "") -> Exception:
    return _common.component_error(NAME, message, log, detail)


def uploads_bucket(region: str) -> str:
    return f"community-uploads-{region}"


def origins() -> list[dict]:
    out = []
    for region in REGIONS:
        out.append({"Id": f"api-{region}", "DomainName": f"api.{region}.community.example.com", "custom": True})
    for region in REGIONS:
        out.append({"Id": f"uploads-{region}", "DomainName": f"{uploads_bucket(region)}.s3.{region}.amazonaws.com",
                    "custom": False})
    return out


def origin_groups() -> list[dict]:
    return [{"Id": f"{kind}-failover", "Members": [f"{kind}-{r}" for r in REGIONS]} for kind in ("api", "uploads")]


def _origin_xml(o: dict) -> str:
    inner = (f"<Id>{escape(o['Id'])}</Id><DomainName>{escape(o['DomainName'])}</DomainName><OriginPath></OriginPath>"
             "<CustomHeaders><Quantity>0</Quantity></CustomHeaders>")
    if o["custom"]:
        inner += ("<CustomOriginConfig><HTTPPort>80</HTTPPort><HTTPSPort>443</HTTPSPort>"
                  "<OriginProtocolPolicy>https-only</OriginProtocolPolicy></CustomOriginConfig>")
    else:
        inner += "<S3OriginConfig><OriginAccessIdentity></OriginAccessIdentity></S3OriginConfig>"
    return f"<Origin>{inner}</Origin>"


def _group_xml(g: dict) -> str:
    codes = "".join(f"<StatusCode>{c}</StatusCode>" for c in FAILOVER_STATUS_CODES)
    members = "".join(f"<OriginGroupMember><OriginId>{escape(m)}</OriginId></OriginGroupMember>" for m in g["Members"])
    return (f"<OriginGroup><Id>{escape(g['Id'])}</Id><FailoverCriteria><StatusCodes>"
            f"<Quantity>{len(FAILOVER_STATUS_CODES)}</Quantity><Items>{codes}</Items></StatusCodes></FailoverCriteria>"
            f"<Members><Quantity>{len(g['Members'])}</Quantity><Items>{members}</Items></Members></OriginGroup>")


def _behavior(target: str, path: str | None = None) -> str:
    tag = "CacheBehavior" if path else "DefaultCacheBehavior"
    pattern = f"<PathPattern>{escape(path)}</PathPattern>" if path else ""
    return (f"<{tag}>{pattern}<TargetOriginId>{escape(target)}</TargetOriginId>"
            "<ViewerProtocolPolicy>redirect-to-https</ViewerProtocolPolicy>"
            f"<CachePolicyId>{CACHING_OPTIMIZED}</CachePolicyId></{tag}>")


def distribution_config_xml() -> bytes:
    os_ = origins()
    gs = origin_groups()
    behaviors = [_behavior("api-failover", "/api/*"), _behavior("uploads-failover", "/uploads/*")]
    return (f'<?xml version="1.0" encoding="UTF-8"?><DistributionConfig xmlns="{_NS}">'
            f"<CallerReference>{CALLER_REFERENCE}</CallerReference>"
            "<Aliases><Quantity>1</Quantity><Items><CNAME>cdn.community.example.com</CNAME></Items></Aliases>"
            f"<Origins><Quantity>{len(os_)}</Quantity><Items>{''.join(_origin_xml(o) for o in os_)}</Items></Origins>"
            f"<OriginGroups><Quantity>{len(gs)}</Quantity><Items>{''.join(_group_xml(g) for g in gs)}</Items>"
            "</OriginGroups>"
            f"{_behavior(f'api-{REGIONS[0]}')}"
            f"<CacheBehaviors><Quantity>{len(behaviors)}</Quantity><Items>{''.join(behaviors)}</Items></CacheBehaviors>"
            f"<Comment>{escape(COMMENT)}</Comment><Enabled>true</Enabled>"
            "</DistributionConfig>").encode()


# --------------------------------------------------------------------------- CloudFront on moto

def _call(endpoint: str, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
    return _common.moto_call(endpoint, method, API + path, service="cloudfront", body=body)


def _find(endpoint: str) -> tuple[str, str] | None:
    code, text = _call(endpoint, "GET", "/distribution")
    if code != 200:
        raise _error(f"ListDistributions on {endpoint} failed: HTTP {code}", detail=text[:500])
    for summary in _common.parse_xml(text).iter(f"{{{_NS}}}DistributionSummary"):
        if summary.findtext(f"{{{_NS}}}Comment") == COMMENT:
            return summary.findtext(f"{{{_NS}}}Id") or "", summary.findtext(f"{{{_NS}}}DomainName") or ""
    return None


def ensure_distribution(endpoint: str) -> tuple[str, str, bool]:
    """(distribution id, domain name, created now)."""
    found = _find(endpoint)
    if found:
        return (*found, False)
    code, text = _call(endpoint, "POST", "/distribution", distribution_config_xml())
    if code not in (200, 201):
        raise _error(f"CreateDistribution on {endpoint} failed: HTTP {code}", detail=text[:800])
    root = _common.parse_xml(text)
    return root.findtext(f"{{{_NS}}}Id") or "", root.findtext(f"{{{_NS}}}DomainName") or "", True


# --------------------------------------------------------------------------- the contract

def up(state_dir: Path, say) -> dict[str, str]:
    endpoint = _common.moto_endpoint(state_dir)
    if not endpoint or not _common.port_open(int(endpoint.rsplit(":", 1)[1])):
        say(f"  {NAME:<10} no running moto in {state_dir}/stack.json: CloudFront distribution not created")
        return {}
    dist_id, domain, created = ensure_distribution(endpoint)
    if created:
        say(f"  {NAME:<10} CloudFront distribution {dist_id} ({domain}) created on moto")
    return _env(endpoint, dist_id, domain)


def _env(endpoint: str, dist_id: str, domain: str) -> dict[str, str]:
    return {
        "LIFEBOAT_CDN_DISTRIBUTION_ID": dist_id,
        "LIFEBOAT_CDN_DOMAIN": domain,
        "AIRFLOW_CONN_LIFEBOAT_CLOUDFRONT": _common.aws_conn(endpoint),
        # moto refuses an origin group as the default behavior's target (a warning locally, an error on AWS);
        # restore tests may create scratch distributions in moto (read-only against CloudFront)
        "LIFEBOAT_CDN_ALLOW_DIRECT_DEFAULT": "true",
        "LIFEBOAT_CDN_SCRATCH_DISTRIBUTION": "true",
    }


def down(state_dir: Path, say) -> str:
    return "nothing to stop (lives in moto's memory)"


def status(state_dir: Path) -> dict:
    endpoint = _common.moto_endpoint(state_dir)
    res: dict = {"running": False, "log": str(Path(state_dir) / "moto.log")}
    if not endpoint:
        res["error"] = "not initialised (run `stack.py up`)"
        return res
    try:
        found = _find(endpoint)
    except Exception as exc:
        res["error"] = str(exc).splitlines()[0]
        return res
    res["running"] = bool(found)
    res["status"] = f"distribution {found[0]}" if found else "distribution MISSING (run up)"
    return res
