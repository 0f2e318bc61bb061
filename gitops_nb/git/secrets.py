"""Plaintext secrets ever committed to the deploy repo: what one blob holds, and the history audit.

"Git remembers": a value committed once stays in every clone. :func:`scan_blob` reads one file's
content and returns its plaintext secrets as :class:`Hit` rows (where, which rule, a salted
fingerprint), never the value. It knows Kubernetes and Kustomize semantics:

- a ``Secret``'s ``data`` (base64, decoded before fingerprinting, so ``data`` and ``stringData``
  holding the same value match) and ``stringData``;
- a kustomization's ``secretGenerator`` ``literals``, and its ``envs``/``files`` when they name
  committed files (:func:`generator_sources` lists them; the audit reads them as secret files);
- Helm values (any YAML mapping: values files, a HelmRelease's ``spec.values``, an Application's
  ``helm.values``/``valuesObject``/``parameters``), ConfigMaps and container ``env`` entries whose
  key looks like a secret (detect-secrets' keyword list) and whose value is a literal;
- kubeconfigs (a user's token, password, client key, auth-provider secrets) and private keys.

It never flags encrypted or referenced values: a SOPS file (its ``sops:`` metadata, or
``ENC[...]`` values), a ``SealedSecret``, External Secrets / Vault / CSI objects, and values that
are templates or references (``{{ }}``, ``${}``, ``<path:...>``, ``vault:``, ``ref+``).

Generic tokens (cloud keys, API tokens, private keys) in any text file come from detect-secrets'
maintained plugins (its regex detectors, run on the in-memory text; no network verification, no
logging of what it found): we keep no regex list of our own.

The fingerprint is HMAC-SHA256 of the value under a per-repo salt, truncated to 16 hex digits: the
same value is recognised across commits and files, and nothing of the value can be read back.
The salt never appears in an output; it comes from ``salt=``, ``$GITOPS_NB_SECRETS_SALT`` or the
clone's ``.git/gitops-nb-salt`` (created once, mode 0600).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import os
import posixpath
import re
import secrets as _random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from ..errors import InputError
from .manifests import KUSTOMIZATION_FILES, YAML_SUFFIXES, InvalidYAML

__all__ = [
    "MAX_BLOB",
    "ROTATED_FILE",
    "SALT_ENV",
    "SALT_FILE",
    "BlobChange",
    "Hit",
    "Source",
    "fingerprint",
    "generator_sources",
    "history_rows",
    "load_salt",
    "read_rotated",
    "scan_blob",
]

#: files larger than this are not read (counted in the audit's ``attrs["skipped"]``)
MAX_BLOB = 1 << 20
#: where the per-repo salt is kept: the clone's git directory (never committed, never pushed)
SALT_FILE = "gitops-nb-salt"
SALT_ENV = "GITOPS_NB_SECRETS_SALT"
#: the file (at the audited revision) listing fingerprints whose values were rotated
ROTATED_FILE = ".gitops-nb-rotated"

#: kinds whose values are encrypted or references, never plaintext
_SEALED_KINDS = frozenset(
    {
        "SealedSecret",  # bitnami sealed-secrets: encryptedData
        "ExternalSecret",  # external-secrets.io: references into a secret store
        "ClusterExternalSecret",
        "PushSecret",
        "SecretStore",
        "ClusterSecretStore",
        "VaultStaticSecret",  # secrets.hashicorp.com (Vault Secrets Operator)
        "VaultDynamicSecret",
        "VaultPKISecret",
        "VaultAuth",
        "VaultConnection",
        "SecretProviderClass",  # secrets-store CSI driver
        "OnePasswordItem",
        "AzureKeyVaultSecret",
    }
)
#: value prefixes that name a secret elsewhere (Vault, vals, argocd-vault-plugin, SOPS) rather than hold one
_REFERENCE_PREFIXES = (
    "vault:",  # Vault paths (bank-vaults, vault-env)
    "ref+",  # vals / helm-secrets references
    "<path:",  # argocd-vault-plugin
    "ENC[",  # SOPS
    "op://",  # 1Password secret references
    "secretref+",
    "sm://",
    "awssecretsmanager:",
    "gcpsm:",
    "akv://",
)
#: a value that is a file path (``/etc/app/key.pem``, ``./secrets/x.sh``), not the secret itself
_PATH_VALUE = re.compile(r"(/|\./|\.\./|~/)\S*|\S*\.(ya?ml|json|md|html|sh|txt|env|pem|key|crt|conf|toml|ini)")
_KUBECONFIG_USER_KEYS = ("token", "password", "client-key-data", "client-certificate-data")
_AUTH_PROVIDER_KEYS = ("client-secret", "refresh-token", "id-token", "access-token")
#: key names that point at a secret (a name, a key within it, a path) rather than hold one
_REFERENCE_KEY = re.compile(
    r"(?i)(existing|name$|names$|namespace$|ref$|refs$|file$|path$|dir$|mount|policy|enabled$|length$"
    r"|hash$|htpasswd|alg$|algorithm$|type$|kind$|mode$|format$|version$|ttl$|complexity$|rotation|expir)"
)
#: subtrees whose keys name secrets rather than hold them: metadata (annotations, labels) and references
_REFERENCE_TREE = re.compile(r"(?i)^(metadata|.*ref|.*refs|valueFrom|envFrom|.*selector)$")
_NOT_SECRET_VALUES = frozenset({"true", "false", "yes", "no", "on", "off", "null", "none", "~", ""})
#: detect-secrets plugins that are not token rules (keywords are read structurally here; entropy and
#: public IPs are not secrets by themselves)
_EXCLUDED_PLUGINS = frozenset(
    {"KeywordDetector", "Base64HighEntropyString", "HexHighEntropyString", "IPPublicDetector"}
)


@dataclass(frozen=True)
class Hit:
    """One plaintext secret in one file's content: where, under which rule, and its fingerprint."""

    kind: str | None  # Kubernetes kind (Secret, ConfigMap, Kustomization, Config for a kubeconfig), or None
    name: str | None  # the object's name (a kubeconfig's user), or None
    key: str | None  # the key holding the value (data key, literal key, dotted values path), or None
    rule: str  # secret-data, secret-stringData, secretGenerator-literal, ..., detect-secrets: <type>
    fingerprint: str


@dataclass(frozen=True)
class Source:
    """A file a kustomization's ``secretGenerator`` reads: ``how`` is ``envs`` or ``files``."""

    how: str
    kustomization: str
    generator: str | None
    key: str | None  # files: the key the file's content becomes (its name unless ``key=path``)


# -- the salt and the fingerprint ------------------------------------------------------------


def load_salt(git_dir: str | Path, salt: str | bytes | None = None) -> bytes:
    """The fingerprint salt: ``salt``, else ``$GITOPS_NB_SECRETS_SALT``, else the clone's own
    ``<git dir>/gitops-nb-salt`` (created once with 32 random bytes, mode 0600).

    Fingerprints compare only under the same salt: CI that gates on a rotated list made on another
    clone needs that clone's salt (``$GITOPS_NB_SECRETS_SALT``, kept as a CI secret).
    """
    if salt is None:
        salt = os.environ.get(SALT_ENV) or None
    if salt is not None:
        out = salt.encode() if isinstance(salt, str) else bytes(salt)
        if len(out) < 16:
            raise InputError(
                "the secrets salt must be at least 16 characters: generate one with `openssl rand -hex 32`"
            )
        return out
    f = Path(git_dir) / SALT_FILE
    if not f.exists():
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(_random.token_hex(32) + "\n")
    return f.read_text().strip().encode()


def fingerprint(salt: bytes, value: bytes | str) -> str:
    """HMAC-SHA256 of ``value`` under ``salt``, 16 hex digits: recognisable, not reversible."""
    data = value.encode() if isinstance(value, str) else value
    return hmac.new(salt, data.strip(), sha256).hexdigest()[:16]


def read_rotated(text: str) -> set[str]:
    """Fingerprints listed in a rotated file: the first word of each line; ``#`` starts a comment."""
    out = set()
    for line in text.splitlines():
        word = line.split("#", 1)[0].strip().split(" ", 1)[0].lower()
        if word:
            if not re.fullmatch(r"[0-9a-f]{16}", word):
                raise InputError(
                    f"{ROTATED_FILE}: {word[:20]!r} is not a fingerprint: each line is a 16-hex-digit fingerprint "
                    "from the audit, then anything (who rotated it, when); # starts a comment"
                )
            out.add(word)
    return out


# -- detect-secrets, as a rule set ---------------------------------------------------------------


@functools.cache
def _detectors() -> tuple[list[tuple[str, Any]], re.Pattern[str]]:
    """detect-secrets' token plugins (type, instance) and one pattern that any of them would need to match."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    plugins: list[tuple[str, Any]] = []
    parts: list[str] = []
    found: dict[str, Any] = dict(get_mapping_from_secret_type_to_class())
    for secret_type, cls in sorted(found.items()):
        if cls.__name__ in _EXCLUDED_PLUGINS or not issubclass(cls, RegexBasedDetector):
            continue
        plugins.append((secret_type, cls()))
        for rx in cls.denylist:
            flags = "i" if rx.flags & re.IGNORECASE else ""
            parts.append(f"(?{flags}:{rx.pattern})" if flags else f"(?:{rx.pattern})")
    try:
        pre = re.compile("|".join(parts))
    except re.error:  # a backreference does not survive the union: check every plugin instead
        pre = re.compile("")
    return plugins, pre


@functools.cache
def _keyword() -> re.Pattern[str]:
    """A key name that looks like a secret's: detect-secrets' keyword denylist (password, secret, api_key ...)."""
    from detect_secrets.plugins.keyword import DENYLIST

    return re.compile("|".join(DENYLIST), re.IGNORECASE)


def _templated(value: str) -> bool:
    from detect_secrets.filters.heuristic import is_prefixed_with_dollar_sign, is_templated_secret

    v = value.strip()
    return (
        "{{" in v
        or "${" in v
        or "$(" in v
        or v.startswith(_REFERENCE_PREFIXES)
        or is_templated_secret(v)
        or is_prefixed_with_dollar_sign(v)
    )


def _literal(value: Any, *, paths: bool = False) -> str | None:
    """A value worth flagging as a plaintext secret, as text; None for references, templates and non-values
    (and, with ``paths``, file paths: a keyed value like ``privateKey: /etc/app/key.pem`` names a file)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    v = value.strip()
    if v.lower() in _NOT_SECRET_VALUES or _templated(v) or (paths and _PATH_VALUE.fullmatch(v)):
        return None
    return v


def _token_hits(text: str, salt: bytes, kind: str | None, name: str | None, key: str | None) -> list[Hit]:
    """detect-secrets' token rules over ``text`` (a whole file, or one value)."""
    plugins, pre = _detectors()
    if pre.pattern and not pre.search(text):
        return []
    from detect_secrets.filters.heuristic import (
        is_not_alphanumeric_string,
        is_potential_uuid,
        is_sequential_string,
    )

    out = []
    for secret_type, plugin in plugins:
        for match in plugin.analyze_string(text):
            if is_sequential_string(match) or is_potential_uuid(match) or is_not_alphanumeric_string(match):
                continue  # detect-secrets' own heuristic filters, as its scan applies them
            value = _pem_block(text, match) if secret_type == "Private Key" else match
            if value and not _templated(value):
                out.append(Hit(kind, name, key, f"detect-secrets: {secret_type}", fingerprint(salt, value)))
    return out


def _pem_block(text: str, header: str) -> str | None:
    """The whole PEM block a private-key header starts (its key material is the value), or the line."""
    start = text.find(header)
    if start < 0:
        return None
    end = text.find("-----END", start)
    stop = text.find("\n", text.find("-----", end + 8) + 5) if end >= 0 else text.find("\n", start)
    block = text[text.rfind("\n", 0, start) + 1 : stop if stop >= 0 else len(text)]
    return "".join(block.split())  # the same key indented in YAML or flush in a file: one fingerprint


# -- one file's content ---------------------------------------------------------------------------


def _sops(raw: bytes) -> bool:
    """A SOPS-encrypted file (any format): its values are ``ENC[AES256_GCM,...]`` and it carries sops metadata."""
    return b"ENC[AES256_GCM" in raw and b"sops" in raw


@functools.cache
def _keyword_lower() -> re.Pattern[str]:
    """:func:`_keyword` for lowercased text: case-sensitive, so the regex engine's literal search applies."""
    from detect_secrets.plugins.keyword import DENYLIST

    return re.compile("|".join(DENYLIST))


_TOKEN, _KEYWORD = 1, 2
#: a YAML line ``key: value`` (in a list item or not, key quoted or not)
_KEY_LINE = re.compile(r"""\s*(?:-\s+)?["']?([^\s"':{}\[\]#][^"':{}\[\]#]*?)["']?\s*:(?:\s+(.*))?$""")
_SECRET_LINES = ("secretGenerator", "stringData")


def _plausible(line: str) -> bool:
    """Whether a line with a secret keyword may hold a value the structural rules flag, so its file is parsed:
    ``kind: Secret``, a secretGenerator, a secret-looking key (not a reference like ``secretName``) with a value
    or a block, an env ``name: DB_PASSWORD``, or a flow mapping. A ``secretRef:`` or ``existingSecret: x`` is not."""
    if any(w in line for w in _SECRET_LINES) or ("{" in line and "{{" not in line):  # a flow mapping, not a template
        return True
    m = _KEY_LINE.match(line)
    if m is None:
        return False
    key, value = m.group(1).strip(), (m.group(2) or "").strip()
    if key == "kind":
        return value.strip("'\"") == "Secret"
    if key == "name":  # an env var or a Helm parameter (DB_PASSWORD, db.password), not an object (db-secret)
        v = value.strip("'\"")
        return _secret_key(v) and re.fullmatch(r"[a-z0-9-]+", v) is None
    if not _secret_key(key) or value == "" or value.startswith("#"):
        return False  # ``password:`` opening a mapping (a CRD's schema) holds no value on its line
    if value[0] in "|>&*!":
        return True  # a block scalar, an anchor, an alias or a tag: read the file to know
    v = value.split(" #", 1)[0].strip().strip("'\"")
    return (text := _literal(v, paths=True)) is not None and not _names_key(key, text)


_MEMO_LINES = 1 << 20


def _prefilter(path: str, raw: bytes, memo: dict[str, int] | None) -> tuple[bool, bool]:
    """(worth reading as YAML, worth a token scan), from the file's lines.

    Each distinct line is checked once (``memo``: line -> flags, shared across a history walk): a
    deploy repo's files differ from their last version by a line or two, so most of a file's lines
    were seen before and only its new lines are searched, joined in one search per rule set.
    """
    yaml_file = path.endswith(YAML_SUFFIXES) or posixpath.basename(path) in KUSTOMIZATION_FILES
    text = raw.decode("utf-8", "replace")
    kubeconfig = b"users:" in raw and b"clusters:" in raw
    if memo is None:
        memo = {}
    elif len(memo) > _MEMO_LINES:
        memo.clear()
    flags = 0
    new: list[str] = []
    for line in text.splitlines():
        f = memo.get(line)
        if f is None:
            new.append(line)
        else:
            flags |= f
    if new:
        pre, kw = _detectors()[1], _keyword_lower()
        joined = "\n".join(new)
        tok_any = not pre.pattern or pre.search(joined) is not None
        kw_any = kw.search(joined.lower()) is not None
        for line in new:
            f = (_TOKEN if tok_any and (not pre.pattern or pre.search(line)) else 0) | (
                _KEYWORD if kw_any and kw.search(line.lower()) and _plausible(line) else 0
            )
            memo[line] = f
            flags |= f
        if tok_any and not flags & _TOKEN:  # a match across lines (a private key's header): scan the file
            flags |= _TOKEN
    # a token in a YAML file is read in its document too: a SealedSecret's or SOPS file's ciphertext is no token
    structural = kubeconfig or (yaml_file and bool(flags & (_KEYWORD | _TOKEN)))
    return structural, bool(flags & _TOKEN)


def scan_blob(
    path: str,
    raw: bytes,
    salt: bytes,
    load: Callable[[bytes], list[Any] | InvalidYAML],
    source: Source | None = None,
    memo: dict[str, int] | None = None,
) -> list[Hit]:
    """The plaintext secrets in one file's content ``raw`` at ``path`` (no value kept, only fingerprints).

    ``load`` parses YAML the way the repo does (bounded, see :mod:`~gitops_nb.git.manifests`);
    ``source`` says the file is read by a kustomization's ``secretGenerator`` (all of it is secret);
    ``memo`` remembers lines already checked (see :func:`_prefilter`), to share across many files.
    """
    if _sops(raw):
        return []
    if source is not None:
        return _generator_source(path, raw, salt, source)
    structural, tokens = _prefilter(path, raw, memo)
    hits: list[Hit] = []
    docs: list[Any] | None = None
    if structural:
        loaded = load(raw)
        if not isinstance(loaded, InvalidYAML):
            docs = loaded
    if docs is not None:
        if any(isinstance(d, dict) and isinstance(d.get("sops"), dict) for d in docs):
            return []
        tagged = _tagged_values(raw)
        for d in docs:
            if isinstance(d, dict):
                hits += _doc_hits(path, d, salt, tokens, tagged)
    elif tokens:
        hits += _token_hits(raw.decode("utf-8", "replace"), salt, None, None, None)
    elif structural and path.endswith(YAML_SUFFIXES):
        pass  # unreadable YAML without a token: nothing to attribute
    return _dedupe(hits)


def _dedupe(hits: Iterable[Hit]) -> list[Hit]:
    """One hit per (object, key, value): a structural rule wins over a token rule for the same place."""
    best: dict[tuple[Any, ...], Hit] = {}
    for h in hits:
        k = (h.kind, h.name, h.key, h.fingerprint)
        if k not in best or (best[k].rule.startswith("detect-secrets") and not h.rule.startswith("detect-secrets")):
            best[k] = h
    return list(best.values())


def _meta_name(d: dict[str, Any]) -> str | None:
    meta = d.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return str(name) if name is not None else None


def _doc_hits(path: str, d: dict[str, Any], salt: bytes, tokens: bool, tagged: frozenset[str]) -> list[Hit]:
    kind = d.get("kind") if isinstance(d.get("kind"), str) else None
    name = _meta_name(d)
    if kind in _SEALED_KINDS:
        return []
    hits: list[Hit] = []
    if kind == "Secret" and str(d.get("apiVersion", "v1")) == "v1":
        hits += _secret_hits(d, name, salt)
        rest = {k: v for k, v in d.items() if k not in ("data", "stringData")}
        hits += _walk_hits(rest, kind, name, "", salt, tokens, tagged=tagged)
        return hits
    if (kind == "Config" or (kind is None and "clusters" in d)) and isinstance(d.get("users"), list):
        kind = "Config"
        hits += _kubeconfig_hits(d, salt)
    if kind == "Kustomization" or posixpath.basename(path) in KUSTOMIZATION_FILES:
        hits += _generator_literals(d, salt)
        rest = {k: v for k, v in d.items() if k not in ("secretGenerator",)}
        hits += _walk_hits(rest, kind or "Kustomization", name, "", salt, tokens, keywords=False, tagged=tagged)
        return hits
    hits += _walk_hits(d, kind, name, "", salt, tokens, keywords=kind != "Config", tagged=tagged)
    return hits


def _secret_hits(d: dict[str, Any], name: str | None, salt: bytes) -> list[Hit]:
    hits = []
    for field in ("data", "stringData"):
        values = d.get(field)
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            text = _literal(value)
            if text is None:
                continue
            data: bytes | str = text
            if field == "data":
                try:
                    data = base64.b64decode("".join(text.split()), validate=True)
                except (binascii.Error, ValueError):
                    data = text
                if isinstance(data, bytes) and _literal(data) is None:  # base64 of a template or reference
                    continue
            hits.append(Hit("Secret", name, str(key), f"secret-{field}", fingerprint(salt, data)))
    return hits


def _kubeconfig_hits(d: dict[str, Any], salt: bytes) -> list[Hit]:
    hits = []
    for u in d.get("users") or []:
        if not isinstance(u, dict) or not isinstance(u.get("user"), dict):
            continue
        user, uname = u["user"], str(u.get("name"))
        for key in _KUBECONFIG_USER_KEYS:
            text = _literal(user.get(key))
            if text is None or (key == "client-certificate-data"):
                continue  # a certificate is public; its key is not
            hits.append(Hit("Config", uname, f"users[{uname}].user.{key}", "kubeconfig", fingerprint(salt, text)))
        provider = user.get("auth-provider")
        conf = provider.get("config") if isinstance(provider, dict) else None
        for key in _AUTH_PROVIDER_KEYS if isinstance(conf, dict) else ():
            text = _literal(conf.get(key))  # type: ignore[union-attr]
            if text is not None:
                field = f"users[{uname}].user.auth-provider.config.{key}"
                hits.append(Hit("Config", uname, field, "kubeconfig", fingerprint(salt, text)))
    return hits


def _generators(d: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for g in d.get("secretGenerator") or []:
        if isinstance(g, dict):
            yield g


def _generator_literals(d: dict[str, Any], salt: bytes) -> list[Hit]:
    hits = []
    for g in _generators(d):
        gname = str(g.get("name")) if g.get("name") is not None else None
        for lit in g.get("literals") or []:
            if not isinstance(lit, str) or "=" not in lit:
                continue
            key, _, value = lit.partition("=")
            text = _literal(value)
            if text is not None:
                hits.append(
                    Hit("Kustomization", gname, key.strip(), "secretGenerator-literal", fingerprint(salt, text))
                )
    return hits


def generator_sources(path: str, docs: list[Any]) -> dict[str, Source]:
    """The files a kustomization at ``path`` feeds to its ``secretGenerator`` (``envs``, ``env``, ``files``),
    as repo paths (remote URLs and paths leaving the repo left out)."""
    base = posixpath.dirname(path)
    out: dict[str, Source] = {}
    for d in docs:
        if not isinstance(d, dict):
            continue
        for g in _generators(d):
            gname = str(g.get("name")) if g.get("name") is not None else None
            envs = [*(g.get("envs") or []), *([g["env"]] if isinstance(g.get("env"), str) else [])]
            refs: list[tuple[str, str, str | None]] = [("envs", e, None) for e in envs if isinstance(e, str)]
            for f in g.get("files") or []:
                if isinstance(f, str):
                    named, _, rel = f.rpartition("=")
                    refs.append(("files", rel, named or posixpath.basename(rel)))
            for how, rel, key in refs:
                if "://" in rel:
                    continue
                full = posixpath.normpath(posixpath.join(base, rel.strip()))
                if not full.startswith("../") and full != "..":
                    out[full] = Source(how, path, gname, key)
    return out


def _generator_source(path: str, raw: bytes, salt: bytes, src: Source) -> list[Hit]:
    """A file a ``secretGenerator`` reads: each ``KEY=VALUE`` of an env file, or a whole ``files`` entry."""
    rule = f"secretGenerator-{src.how}"
    if src.how == "files":
        text = _literal(raw)
        return [Hit("Kustomization", src.generator, src.key, rule, fingerprint(salt, raw))] if text else []
    hits = []
    for line in raw.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        text = _literal(value.strip().strip("'\""))
        if text is not None:
            hits.append(Hit("Kustomization", src.generator, key.strip(), rule, fingerprint(salt, text)))
    return hits


def _walk_hits(
    node: Any,
    kind: str | None,
    name: str | None,
    prefix: str,
    salt: bytes,
    tokens: bool,
    *,
    keywords: bool = True,
    tagged: frozenset[str] = frozenset(),
) -> list[Hit]:
    """Secret-looking keys holding literals (and tokens anywhere) in a YAML tree, with their dotted paths.

    Keys under ``metadata`` (annotations, labels) and under references (``secretRef``, ``valueFrom``,
    ``*Selector``) name secrets, they do not hold them: only tokens count there. ``tagged`` values were
    written after a custom tag (``!secret x``, ``!env_var X``): references resolved by the app.
    """
    hits: list[Hit] = []
    stack: list[tuple[str, Any, bool]] = [(prefix, node, keywords)]
    while stack:
        where, n, kw = stack.pop()
        if isinstance(n, dict):
            label = n.get("name")
            if kw and isinstance(label, str) and "value" in n and _secret_key(label):
                text = _literal(n["value"], paths=True)  # env: [{name: DB_PASSWORD, value: ...}], helm parameters
                if text is not None and text not in tagged and not _names_key(label, text):
                    hits.append(Hit(kind, name, label, _key_rule(kind, where), fingerprint(salt, text)))
            for k, v in n.items():
                key = f"{where}.{k}" if where else str(k)
                if isinstance(v, dict | list):
                    stack.append((key, v, kw and not _REFERENCE_TREE.match(str(k))))
                elif isinstance(v, str):
                    if k == "values" and "\n" in v:  # an Application's helm.values: YAML in a string
                        stack.append((key, _inner_yaml(v), kw))
                    text = _literal(v, paths=True) if kw and _secret_key(str(k)) else None
                    if text is not None and text not in tagged and not _names_key(str(k), text):
                        hits.append(Hit(kind, name, key, _key_rule(kind, key), fingerprint(salt, text)))
                    elif tokens:
                        hits += _token_hits(v, salt, kind, name, key)
        elif isinstance(n, list):
            for i, v in enumerate(n):
                key = f"{where}[{i}]"
                if isinstance(v, dict | list):
                    stack.append((key, v, kw))
                elif isinstance(v, str) and tokens:
                    hits += _token_hits(v, salt, kind, name, key)
    return hits


def _inner_yaml(text: str) -> Any:
    from .manifests import load_documents

    try:
        docs = load_documents(text)
    except InvalidYAML:
        return None
    return docs[0] if len(docs) == 1 else docs


def _names_key(key: str, value: str) -> bool:
    """A value that names a key, a variable or a Secret rather than holds a secret: an environment
    variable's name (``apiKey: SONARR_API_KEY``), a key's name under a key ending in "key"
    (``passwordKey: password``), or a Kubernetes name (or ``namespace/name``) under a key ending in
    "secret" (``pullSecret: flux-system``). ``password: fake_password`` is a value."""
    k = key.lower()
    if re.fullmatch(r"[A-Z][A-Z0-9_]*", value) and _keyword().search(value):
        return True
    if k.endswith("key") and re.fullmatch(r"[a-z_.-]{1,63}", value) and _keyword().search(value):
        return True
    return k.endswith("secret") and re.fullmatch(r"([a-z]([a-z-]*[a-z])?/)?[a-z]([a-z-]*[a-z])?", value) is not None


def _secret_key(key: str) -> bool:
    """A key named like a secret's (``password``, ``db_pass``, ``apiKey``): its last part after a ``/`` or ``.``
    (``csi.storage.k8s.io/provisioner-secret-namespace`` names a namespace)."""
    last = re.split(r"[/.]", key)[-1]
    return _keyword().search(last) is not None and _REFERENCE_KEY.search(last) is None


#: a scalar written after a custom tag: ``key: !secret name`` (Home Assistant), ``!env_var NAME`` (recyclarr)
_TAGGED = re.compile(rb":[ \t]+![^\s!]\S*[ \t]+([^\s#]+)")


def _tagged_values(raw: bytes) -> frozenset[str]:
    return (
        frozenset(m.decode("utf-8", "replace").strip("'\"") for m in _TAGGED.findall(raw))
        if b"!" in raw
        else frozenset()
    )


def _key_rule(kind: str | None, where: str) -> str:
    if kind == "ConfigMap":
        return "configmap-key"
    if ".env[" in where or where.startswith("env["):
        return "env-var"
    parts = re.split(r"[.\[]", where)
    return "values-key" if not kind or "values" in parts or "valuesObject" in parts else "secret-key"


# -- history: blobs' hits to findings ---------------------------------------------------------------

#: one changed path of ``git log --raw``: (sha, author, committer time, path, old blob, new blob, status letter)
BlobChange = tuple[str, str, int, str, str, str, str]
_NULL = "0" * 40


def _place(h: Hit) -> tuple[Any, ...]:
    return (h.kind, h.name, h.key, h.fingerprint)


def history_rows(
    entries: list[BlobChange],
    hits_of: Callable[[str, str], list[Hit]],
    head_fingerprints: set[str],
    until: int | None = None,
) -> list[dict[str, Any]]:
    """Findings from a ``git log --raw`` walk (newest first): one row each time a commit puts a value
    at a place (path, object, key) where the path's version before it did not hold it.

    ``hits_of(blob, path)`` gives a blob's hits (scanned once). ``removed_by_sha`` is the first later
    change of the path (in the walk's order) whose version no longer holds the value there;
    ``first_seen_sha`` the oldest row with the same fingerprint; ``still_at_head`` whether the
    fingerprint is in ``head_fingerprints``. Rows of commits after ``until`` (epoch seconds) are
    left out, but their changes still count as removals.
    """
    by_path: dict[str, list[int]] = {}
    for i in range(len(entries) - 1, -1, -1):  # oldest first
        by_path.setdefault(entries[i][3], []).append(i)
    places: dict[int, set[tuple[Any, ...]]] = {}

    def at(i: int) -> set[tuple[Any, ...]]:
        if i not in places:
            _, _, _, path, _, new, status = entries[i]
            places[i] = set() if status == "D" or new == _NULL else {_place(h) for h in hits_of(new, path)}
        return places[i]

    rows: list[dict[str, Any]] = []
    for path, order in by_path.items():
        for pos, i in enumerate(order):
            sha, author, when, _, old, new, status = entries[i]
            if status == "D" or new == _NULL or (until is not None and when > until):
                continue
            new_hits = hits_of(new, path)
            if not new_hits:
                continue
            before = {_place(h) for h in hits_of(old, path)} if old != _NULL else set()
            for h in new_hits:
                if _place(h) in before:
                    continue
                removed = next((entries[j][0] for j in order[pos + 1 :] if _place(h) not in at(j)), None)
                rows.append(
                    {
                        "sha": sha,
                        "committed_at": when,
                        "author": author,
                        "path": path,
                        "kind": h.kind,
                        "name": h.name,
                        "key": h.key,
                        "rule": h.rule,
                        "fingerprint": h.fingerprint,
                        "removed_by_sha": removed,
                        "still_at_head": h.fingerprint in head_fingerprints,
                        "order": i,
                    }
                )
    first: dict[str, tuple[int, int, str]] = {}
    for r in rows:
        k = (r["committed_at"], -r["order"], r["sha"])
        if r["fingerprint"] not in first or k < first[r["fingerprint"]]:
            first[r["fingerprint"]] = k
    rows.sort(key=lambda r: (r["order"], r["path"], str(r["kind"]), str(r["name"]), str(r["key"])))
    for r in rows:
        del r["order"]
        r["first_seen_sha"] = first[r["fingerprint"]][2]
    return rows
