#!/usr/bin/env python3
"""Checks the Kubernetes example: valid YAML of the expected kinds, and
wired the way ghost needs: ghostd and varnishd share the socket directory
through one emptyDir, the VCL's ghost.init names ghostd's -socket, the
probes hit /healthz and /readyz on the metrics port ghostd listens on, the
ghost.json in the ConfigMap is what ghostd -config reads. Exit 1 with the
reasons otherwise."""
import json
import os
import re
import sys

import yaml

errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)


docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by_kind = {}
for d in docs:
    check("apiVersion" in d and "kind" in d and "metadata" in d, f"document without apiVersion/kind/metadata: {d}")
    by_kind.setdefault(d["kind"], []).append(d)
check(set(by_kind) >= {"ConfigMap", "Deployment", "Service"}, f"kinds {sorted(by_kind)}")
cms = {c["metadata"]["name"]: c for c in by_kind.get("ConfigMap", [])}
dep = by_kind["Deployment"][0]
pod = dep["spec"]["template"]["spec"]
check(dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items(),
      "selector does not match the pod labels")
containers = {c["name"]: c for c in pod.get("containers", []) + pod.get("initContainers", [])}
check({"ghostd", "varnish"} <= set(containers), f"containers {sorted(containers)}")
ghostd, varnish = containers["ghostd"], containers["varnish"]
if ghostd in pod.get("initContainers", []):
    check(ghostd.get("restartPolicy") == "Always", "ghostd as an init container must be a native sidecar (restartPolicy: Always)")

flags = {}
for a in ghostd.get("args", []):
    m = re.fullmatch(r"-([a-z-]+)=(.*)", a)
    check(m is not None, f"ghostd arg {a!r} is not -flag=value")
    if m:
        flags[m.group(1)] = m.group(2)
sock = flags.get("socket", "/run/ghostd/ghostd.sock")
sockdir = os.path.dirname(sock)
volumes = {v["name"]: v for v in pod["volumes"]}


def mount_of(c, path):
    for m in c.get("volumeMounts", []):
        if m["mountPath"] == path:
            return m["name"]
    return None


gv, vv = mount_of(ghostd, sockdir), mount_of(varnish, sockdir)
check(gv is not None and gv == vv, f"ghostd and varnish do not share {sockdir} ({gv}, {vv})")
check(gv in volumes and "emptyDir" in volumes[gv], f"{sockdir} is not an emptyDir")

# The VCL names the same socket.
vcl_text = "".join(v for c in cms.values() for k, v in c.get("data", {}).items() if k.endswith(".vcl"))
check(f'ghost.init("{sock}"' in vcl_text, f"no ghost.init(\"{sock}\" ...) in the VCL ConfigMap")
check('include "ghost.vcl"' in vcl_text, "the VCL does not include ghost.vcl")

# The config ghostd reads comes from a ConfigMap key holding valid JSON.
cfg = flags.get("config", "")
cdir, cname = os.path.dirname(cfg), os.path.basename(cfg)
cvol = volumes.get(mount_of(ghostd, cdir) or "", {})
cm = cms.get(cvol.get("configMap", {}).get("name", ""), {})
check(cname in cm.get("data", {}), f"-config {cfg} is not a key of a mounted ConfigMap")
if cname in cm.get("data", {}):
    try:
        check(json.loads(cm["data"][cname]).get("version") == 2, "ghost.json is not version 2")
    except ValueError as e:
        errors.append(f"ghost.json in the ConfigMap is not JSON: {e}")

# Probes on the metrics listener.
mport = flags.get("metrics", "127.0.0.1:9192").rsplit(":", 1)[1]
check(not flags.get("metrics", "").startswith("127."), "the kubelet cannot probe a metrics listener on loopback")
ports = {p["name"]: str(p["containerPort"]) for p in ghostd.get("ports", [])}


def probe(name, path):
    p = ghostd.get(name, {}).get("httpGet", {})
    port = ports.get(p.get("port"), str(p.get("port")))
    check(p.get("path") == path and port == mport, f"ghostd {name} is {p}, want {path} on port {mport}")


probe("livenessProbe", "/healthz")
probe("readinessProbe", "/readyz")
if "startupProbe" in ghostd:
    probe("startupProbe", "/healthz")

# The Service targets named ports that exist.
named = {p["name"] for c in containers.values() for p in c.get("ports", [])}
for s in by_kind["Service"]:
    for p in s["spec"]["ports"]:
        check(p["targetPort"] in named, f"Service port {p['name']} targets unknown port {p['targetPort']}")

for e in errors:
    print("k8s_check:", e)
sys.exit(1 if errors else 0)
