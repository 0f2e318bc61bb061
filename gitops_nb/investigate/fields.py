"""What a changed field is, read from its structure: the field classes the culprit score weighs.

A field path (``images[ghcr.io/acme/api].newTag``, ``spec.template.spec.containers[app].image``,
``replace /spec/replicas``) is cut into segments, and the segments are read together with the
row's ``kind``, ``via`` and file ``path`` (a ``manifest_changes`` row has all three). Nothing
matches substrings: ``envoy`` is not ``env``, a kustomization's ``resources:`` list is not
container ``resources``, and a CRD's description mentioning ``newTag`` is not an image.

Classes (:data:`FIELD_CLASSES`):

- ``image``: Kustomize ``images[]`` (``newTag``, ``newName``, ``digest``); a container's ``image``
  (``containers``, ``initContainers``, ``ephemeralContainers`` of any pod template); Helm values
  image blocks (``image.tag``, ``image.repository``, ``image.digest``, ``<x>.image.tag``, or an
  ``image: repo:tag`` string) in a values file, a HelmRelease's ``spec.values`` or an Argo CD
  Application's ``helm.valuesObject`` / ``helm.parameters``; a Flux Kustomization's ``spec.images[]``.
- ``chart-version``: ``Chart.yaml`` ``version`` / ``appVersion`` / ``dependencies[].version``; a
  HelmRelease's ``spec.chart.spec.version``; a Flux HelmChart's ``spec.version``; an
  OCIRepository's ``spec.ref.tag`` / ``semver`` / ``digest``; Kustomize ``helmCharts[].version``;
  an Argo CD Application's ``targetRevision`` when it is a version (a chart source's always is;
  a git branch such as ``main`` or ``HEAD`` is not a version bump).
- ``scale``: ``spec.replicas``, an HPA's ``spec.minReplicas`` / ``maxReplicas``, Kustomize
  ``replicas[].count``, a container's ``resources.*``; in Helm values ``replicaCount`` and ``resources``.
- ``env``: a container's ``env[...]`` / ``envFrom``; ConfigMap and Secret data; Kustomize
  ``configMapGenerator`` / ``secretGenerator``; ``env`` / ``extraEnv`` / ``envFrom`` in Helm values.
- ``command``: a container's ``command`` / ``args`` (and in Helm values).
- ``other``: everything else.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

__all__ = ["FIELD_CLASSES", "FieldRef", "field_class", "segments"]

FIELD_CLASSES = ("image", "chart-version", "scale", "env", "command", "other")


@dataclass(frozen=True)
class FieldRef:
    """One changed field with what tells its class: the ``manifest_changes`` row's columns.

    ``deployed`` is False for a field of a file no app is built from (its weight counts only
    when the commit changes nothing an app is built from).
    """

    field: str
    kind: str | None = None
    via: str | None = None
    path: str | None = None
    value: str | None = None  # the new (else old) value, rendered
    deployed: bool = True

    def __str__(self) -> str:
        return self.field


Segment = tuple[str, str | None]  # (name, list key) : containers[app] -> ("containers", "app")

_TOKEN = re.compile(r"\[([^\]]*)\]|([^.\[\]]+)")
_JSON6902 = re.compile(r"^(add|remove|replace|move|copy|test) (/\S*)(.*)$")
_CONTAINER_LISTS = {"containers", "initContainers", "ephemeralContainers"}
_CONTAINER_ATTRS = {
    "image": "image",
    "resources": "scale",
    "env": "env",
    "envFrom": "env",
    "command": "command",
    "args": "command",
}
_IMAGE_PARTS = {"tag", "repository", "digest", "registry"}
_VERSION = re.compile(r"^[~^>=<v]*\d+(\.[\dx*]+)*([-+.][0-9A-Za-z.-]*)?$")
_DATA_KINDS = {"ConfigMap", "Secret"}
_DATA_FIELDS = {"data", "binaryData", "stringData"}


def segments(field: str) -> list[Segment]:
    """Cut a field path into (name, list key) segments; a JSON 6902 ``op /a/0/b`` path too."""
    if m := _JSON6902.match(field):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in m.group(2).split("/")[1:]]
        out: list[Segment] = []
        for p in parts:
            if out and out[-1][1] is None and (p.isdigit() or p == "-"):
                out[-1] = (out[-1][0], p)
            else:
                out.append((p, None))
        return out + segments(m.group(3).lstrip(".")) if m.group(3).strip(".") else out
    out = []
    for m in _TOKEN.finditer(field):
        key, name = m.group(1), m.group(2)
        if name is not None:
            out.append((name, None))
        elif out and out[-1][1] is None:
            out[-1] = (out[-1][0], key)
        else:
            out.append(("", key))
    return out


def _container(segs: list[Segment]) -> str | None:
    """The class of a container attribute (``containers[app].image``), anywhere in a pod template."""
    for i, (name, key) in enumerate(segs[:-1]):
        if name in _CONTAINER_LISTS and key is not None:
            return _CONTAINER_ATTRS.get(segs[i + 1][0], "other")
    return None


def _values(names: list[str]) -> str | None:
    """The class of a Helm values field (a values file, ``spec.values``, ``helm.valuesObject``)."""
    if "image" in names:
        rest = names[len(names) - 1 - names[::-1].index("image") + 1 :]
        if not rest or rest[0] in _IMAGE_PARTS:
            return "image"
    if names and names[-1] in ("replicaCount", "replicas"):
        return "scale"
    for n in names:
        if n == "resources":
            return "scale"
        if n in ("env", "extraEnv", "envFrom", "extraEnvVars"):
            return "env"
        if n in ("command", "args"):
            return "command"
    return None


def _kustomization(segs: list[Segment]) -> str | None:
    """The class of a kustomization file's field (``images[x].newTag``, ``replicas[x].count``)."""
    if not segs or segs[0][1] is None:  # the top-level lists are keyed: resources, patches... are not
        return None
    top, names = segs[0][0], [n for n, _ in segs]
    if top == "images":
        return "image"
    if top == "replicas" and names[1:] in ([], ["count"]):
        return "scale"
    if top == "helmCharts" and names[1:] == ["version"]:
        return "chart-version"
    if top in ("configMapGenerator", "secretGenerator") and names[1:2] in (["literals"], ["envs"], ["files"]):
        return "env"
    return None


def _application(names: list[str], segs: list[Segment], value: str | None) -> str | None:
    """An Argo CD Application: its source's ``targetRevision`` and Helm values."""
    if names[:2] not in (["spec", "source"], ["spec", "sources"]):
        return None
    rest, rest_segs = names[2:], segs[2:]
    if rest == ["targetRevision"]:
        return "chart-version" if value is not None and _VERSION.match(value.strip()) else None
    if rest[:2] == ["helm", "valuesObject"]:
        return _values(rest[2:])
    if rest[:2] == ["helm", "parameters"] and rest_segs[1][1] is not None and rest[2:] == ["value"]:
        return _values(str(rest_segs[1][1]).split("."))
    return None


def _object(ref: FieldRef, segs: list[Segment]) -> str | None:
    """A Kubernetes object's field (a manifest, a patch, a JSON 6902 op)."""
    names = [n for n, _ in segs]
    kind = ref.kind
    if kind in _DATA_KINDS and names[:1] and names[0] in _DATA_FIELDS:
        return "env"
    if kind == "HelmRelease":
        if names[:4] == ["spec", "chart", "spec", "version"]:
            return "chart-version"
        if names[:2] == ["spec", "values"]:
            return _values(names[2:])
    if kind == "HelmChart" and names == ["spec", "version"]:
        return "chart-version"
    if kind == "OCIRepository" and names[:2] == ["spec", "ref"] and names[2:] in (["tag"], ["semver"], ["digest"]):
        return "chart-version"
    if kind == "Application" and (cls := _application(names, segs, ref.value)):
        return cls
    if kind == "Kustomization" and names[:2] == ["spec", "images"] and segs[1][1] is not None:
        return "image"
    if names == ["spec", "replicas"]:
        return "scale"
    if kind == "HorizontalPodAutoscaler" and names in (["spec", "minReplicas"], ["spec", "maxReplicas"]):
        return "scale"
    return _container(segs)


def _chart_yaml(names: list[str]) -> str | None:
    if names in (["version"], ["appVersion"]) or (names[:1] == ["dependencies"] and names[1:] == ["version"]):
        return "chart-version"
    return None


def field_class(ref: FieldRef | str) -> str:
    """The class of one changed field (one of :data:`FIELD_CLASSES`), from its structure.

    A bare string is a field path with no row around it (a manual edit's ``managedFields`` path):
    the kustomization and object rules are tried on it, not the Helm values rules.
    """
    r = ref if isinstance(ref, FieldRef) else FieldRef(ref)
    if r.kind == "CustomResourceDefinition" or not r.field:
        return "other"
    segs = segments(r.field)
    if not segs:
        return "other"
    names = [n for n, _ in segs]
    base = posixpath.basename(r.path or "")
    if r.via == "kustomization":
        cls = _kustomization(segs)
    elif r.kind is None and base in ("Chart.yaml", "Chart.yml"):
        cls = _chart_yaml(names)
    elif r.via is None:  # a path with no row around it
        cls = _kustomization(segs) or _object(r, segs)
    elif r.kind is None and r.via == "yaml":  # YAML with no kind: a Helm values file
        cls = _object(r, segs) or _values(names)
    else:
        cls = _object(r, segs)
    return cls or "other"
