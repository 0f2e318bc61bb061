"""Plaintext secrets ever committed: every form found, encrypted and referenced ones never, no value out."""

from __future__ import annotations

import base64
import json
import secrets as rnd
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

import gitops_nb as g
from gitops_nb import schema
from gitops_nb.sandbox.demo import ALICE, BOB, CI, RepoWriter

from .conftest import git

T = pd.Timestamp("2026-03-01T10:00:00Z")
SALT = "test-salt-0123456789abcdef"
ROOT = Path(__file__).resolve().parent.parent


def _v(label: str) -> str:
    """A planted value no test run used before (so a leak cannot pass by coincidence)."""
    return f"PLANTED-{label}-{rnd.token_hex(6)}"


@dataclass
class Planted:
    path: Path
    values: dict[str, str]  # label -> the value in clear
    shas: dict[str, str]

    def forms(self) -> list[str]:
        """Every value in clear and in base64 (and a value's distinctive tail: no reversible piece either)."""
        out = []
        for v in self.values.values():
            out += [v, base64.b64encode(v.encode()).decode(), v[-12:]]
        return out


def _kubeconfig(token: str) -> str:
    return (
        "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster: {server: 'https://10.0.0.1'}\n"
        "contexts:\n- name: prod\n  context: {cluster: prod, user: deployer}\ncurrent-context: prod\n"
        f"users:\n- name: deployer\n  user:\n    token: {token}\n"
    )


def build_planted(path: Path) -> Planted:
    """A deploy repo with a plaintext secret in every form the audit reads, and encrypted/referenced ones."""
    v = {k: _v(k) for k in ("string", "literal", "env", "file", "values", "configmap", "envvar", "kube")}
    v["aws"] = "AKIA" + "".join(rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    v["github"] = "ghp_" + rnd.token_hex(18)
    v["pem"] = "MIIEow" + rnd.token_hex(24)
    pem = f"-----BEGIN RSA PRIVATE KEY-----\n{v['pem']}\n{rnd.token_hex(24)}\n-----END RSA PRIVATE KEY-----\n"
    v["pem-file"] = "MIIEpA" + rnd.token_hex(24)
    pem_file = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{v['pem-file']}\n-----END OPENSSH PRIVATE KEY-----\n"
    b64 = base64.b64encode(v["string"].encode()).decode()  # the same value, in a Secret's data
    w = RepoWriter(path)
    shas = {}
    base = "apps/web/base"
    shas["init"] = w.commit(
        "initial layout",
        when=T,
        author=ALICE,
        files={
            f"{base}/kustomization.yaml": (
                "resources:\n- deployment.yaml\n- secret.yaml\n- config.yaml\n"
                "secretGenerator:\n- name: web-creds\n  literals:\n"
                f"  - API_KEY={v['literal']}\n  - EMPTY=\n  - TEMPLATED=${{API_KEY}}\n"
                "  envs:\n  - creds.env\n  files:\n  - tls.key=tls/key.pem\n"
            ),
            f"{base}/secret.yaml": f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {v['string']}\n",
            f"{base}/creds.env": f"# from the vault, by hand\nDB_PASS={v['env']}\n",
            f"{base}/tls/key.pem": pem,
            f"{base}/config.yaml": (
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n"
                f"data:\n  LOG_LEVEL: info\n  SMTP_PASSWORD: {v['configmap']}\n  SECRET_NAME: web-creds\n"
            ),
            f"{base}/deployment.yaml": (
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n"
                "      containers:\n      - name: web\n        image: ghcr.io/acme/web:1.0.0\n        env:\n"
                f"        - name: DB_PASSWORD\n          value: {v['envvar']}\n        - name: LOG_LEVEL\n          value: info\n"
                "        - name: API_SECRET\n          valueFrom: {secretKeyRef: {name: web-creds, key: API_KEY}}\n"
            ),
            "charts/web/values.yaml": (
                f"image: {{tag: 1.0.0}}\ndb:\n  password: {v['values']}\n  existingSecret: db-secret\n"
                "  passwordSecretName: db\n  passwordKey: password\nauth:\n  enabled: true\n"
            ),
            "charts/web/templates/secret.yaml": (
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}\nstringData:\n"
                "  password: {{ .Values.db.password | quote }}\n"
            ),
            "clusters/prod/deployer.kubeconfig": _kubeconfig(v["kube"]),
            "scripts/bootstrap.sh": f"#!/bin/sh\nexport AWS_ACCESS_KEY_ID={v['aws']}\nexport GH_TOKEN={v['github']}\n",
            "keys/deploy_key": pem_file,
            "README.md": "# deploy-config\n",
        },
    )
    # encrypted or referenced: never a finding
    shas["sealed"] = w.commit(
        "sealed, external, vault and sops secrets",
        when=T + pd.Timedelta("30m"),
        author=BOB,
        files={
            "apps/api/sealed.yaml": (
                "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: api\nspec:\n"
                "  encryptedData:\n    password: AgBy3i4OJSWK+PiTySYZZA9rO43cGDEq\n"
                "  template:\n    metadata: {name: api}\n"
            ),
            "apps/api/external.yaml": (
                "apiVersion: external-secrets.io/v1beta1\nkind: ExternalSecret\nmetadata:\n  name: api\nspec:\n"
                "  secretStoreRef: {name: vault, kind: ClusterSecretStore}\n  data:\n  - secretKey: password\n"
                "    remoteRef: {key: secret/api, property: password}\n"
            ),
            "apps/api/avp.yaml": (
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: avp\n  annotations:\n"
                "    avp.kubernetes.io/path: kv/data/api\nstringData:\n  password: <password>\n"
                "  token: <path:kv/data/api#token>\n"
                f"data:\n  other: {base64.b64encode(b'<path:kv/data/api#other>').decode()}\n"
            ),
            "apps/api/sops.yaml": (
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: sops\nstringData:\n"
                "  password: ENC[AES256_GCM,data:Tr7o=,iv:1x=,tag:2y=,type:str]\n"
                "sops:\n  mac: ENC[AES256_GCM,data:zz=,iv:a=,tag:b=,type:str]\n  lastmodified: '2026-03-01T10:00:00Z'\n"
                "  version: 3.9.0\n"
            ),
            "apps/api/sops.env": "DB_PASS=ENC[AES256_GCM,data:Zm9v,iv:x,tag:y,type:str]\nsops_version=3.9.0\n",
            "apps/api/values-vault.yaml": "db:\n  password: vault:secret/data/api#password\n  apiKey: ref+vault://api/key\n",
        },
    )
    # the same value again, base64 in another Secret's data; and a second value in the first Secret
    shas["copy"] = w.commit(
        "api: reuse the db password",
        when=T + pd.Timedelta("1h"),
        author=BOB,
        files={
            "apps/api/secret.yaml": f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: api-db\ndata:\n  password: {b64}\n",
            "charts/web/values.yaml": (
                f"image: {{tag: 1.1.0}}\ndb:\n  password: {v['values']}\n  existingSecret: db-secret\n"
                "  passwordSecretName: db\n  passwordKey: password\nauth:\n  enabled: true\n"
            ),
        },
    )
    # removed: the plain Secret and the bootstrap script; the copy stays
    shas["remove"] = w.commit(
        "remove plaintext secrets",
        when=T + pd.Timedelta("2h"),
        author=CI,
        files={f"{base}/secret.yaml": None, "scripts/bootstrap.sh": "#!/bin/sh\necho use the vault\n"},
    )
    return Planted(path, v, shas)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    return build_planted(tmp_path_factory.mktemp("secrets") / "deploy-config")


@pytest.fixture(scope="module")
def findings(planted: Planted) -> pd.DataFrame:
    return g.DeployRepo(planted.path).secret_findings(salt=SALT)


def _places(f: pd.DataFrame) -> set[tuple[str, object, object, object, str]]:
    return {
        (
            p,
            k if isinstance(k, str) else None,
            n if isinstance(n, str) else None,
            key if isinstance(key, str) else None,
            r,
        )
        for p, k, n, key, r in zip(f["path"], f["kind"], f["name"], f["key"], f["rule"], strict=True)
    }


def test_every_form_is_found_where_it_was_committed(planted: Planted, findings: pd.DataFrame) -> None:
    assert list(findings.columns) == list(schema.SECRET_FINDINGS)
    base = "apps/web/base"
    assert _places(findings) == {
        (f"{base}/secret.yaml", "Secret", "db", "password", "secret-stringData"),
        ("apps/api/secret.yaml", "Secret", "api-db", "password", "secret-data"),
        (f"{base}/kustomization.yaml", "Kustomization", "web-creds", "API_KEY", "secretGenerator-literal"),
        (f"{base}/creds.env", "Kustomization", "web-creds", "DB_PASS", "secretGenerator-envs"),
        (f"{base}/tls/key.pem", "Kustomization", "web-creds", "tls.key", "secretGenerator-files"),
        (f"{base}/config.yaml", "ConfigMap", "web-config", "data.SMTP_PASSWORD", "configmap-key"),
        (f"{base}/deployment.yaml", "Deployment", "web", "DB_PASSWORD", "env-var"),
        ("charts/web/values.yaml", None, None, "db.password", "values-key"),
        ("clusters/prod/deployer.kubeconfig", "Config", "deployer", "users[deployer].user.token", "kubeconfig"),
        ("scripts/bootstrap.sh", None, None, None, "detect-secrets: AWS Access Key"),
        ("scripts/bootstrap.sh", None, None, None, "detect-secrets: GitHub Token"),
        ("keys/deploy_key", None, None, None, "detect-secrets: Private Key"),
    }
    first = findings[findings["sha"] == planted.shas["init"]]
    assert set(first["author"]) == {ALICE[0]} and (first["committed_at"] == T).all()
    assert str(findings["committed_at"].dt.tz) == "UTC"
    # the values file changed (a tag) but its password did not: no second row for it
    assert (findings["path"] == "charts/web/values.yaml").sum() == 1


def test_encrypted_and_referenced_values_are_never_flagged(planted: Planted, findings: pd.DataFrame) -> None:
    """SOPS (YAML and dotenv), SealedSecret, ExternalSecret, argocd-vault-plugin placeholders, vault:/ref+
    references, Helm templates, empty and ${VAR} literals, secretKeyRef and *SecretName keys."""
    assert (
        not findings["path"]
        .str.startswith("apps/api/")
        .drop(findings.index[findings["path"] == "apps/api/secret.yaml"])
        .any()
    )
    assert (findings["sha"] != planted.shas["sealed"]).all()
    assert "charts/web/templates/secret.yaml" not in set(findings["path"])
    keys = set(findings["key"].dropna())
    assert not keys & {"EMPTY", "TEMPLATED", "API_SECRET", "db.existingSecret", "db.passwordSecretName"}
    assert not keys & {"db.passwordKey", "auth.enabled", "data.SECRET_NAME", "LOG_LEVEL"}


def test_one_value_one_fingerprint_across_files_and_encodings(planted: Planted, findings: pd.DataFrame) -> None:
    by = findings.set_index(["path", "key"])
    clear = by.loc[("apps/web/base/secret.yaml", "password"), "fingerprint"]
    encoded = by.loc[("apps/api/secret.yaml", "password"), "fingerprint"]
    assert clear == encoded  # stringData in clear == data in base64: the same value
    assert findings["fingerprint"].nunique() == len(findings) - 1  # every other value is distinct
    copy = findings[findings["path"] == "apps/api/secret.yaml"].iloc[0]
    assert copy["sha"] == planted.shas["copy"] and copy["first_seen_sha"] == planted.shas["init"]
    assert findings["fingerprint"].str.fullmatch(r"[0-9a-f]{16}").all()
    # another salt, other fingerprints: they cannot be matched against a list of guesses without the salt
    other = g.DeployRepo(planted.path).secret_findings(salt="another-salt-0123456789")
    assert not set(other["fingerprint"]) & set(findings["fingerprint"])


def test_still_at_head_and_removed_by(planted: Planted, findings: pd.DataFrame) -> None:
    by = findings.set_index(["path", "rule"])
    script = by.loc[("scripts/bootstrap.sh", "detect-secrets: AWS Access Key")]
    assert script["removed_by_sha"] == planted.shas["remove"] and not script["still_at_head"]
    plain = by.loc[("apps/web/base/secret.yaml", "secret-stringData")]
    # removed from this file, but the same value is still at HEAD in apps/api/secret.yaml
    assert plain["removed_by_sha"] == planted.shas["remove"] and plain["still_at_head"]
    kube = by.loc[("clusters/prod/deployer.kubeconfig", "kubeconfig")]
    assert kube["removed_by_sha"] is None and kube["still_at_head"]
    # without cluster evidence nothing is claimed about deploys
    assert findings["deployed"].isna().all() and findings["deployed_at"].isna().all()


def test_since_reads_only_the_window_and_still_sees_removals(planted: Planted) -> None:
    repo = g.DeployRepo(planted.path)
    f = repo.secret_findings(since=T + pd.Timedelta("45m"), salt=SALT)
    assert set(f["sha"]) == {planted.shas["copy"]}
    assert f["first_seen_sha"].iloc[0] == planted.shas["copy"]  # the first sighting within the window
    until = repo.secret_findings(until=T + pd.Timedelta("10m"), salt=SALT)
    assert set(until["sha"]) == {planted.shas["init"]}
    aws = until[until["rule"] == "detect-secrets: AWS Access Key"].iloc[0]
    assert aws["removed_by_sha"] == planted.shas["remove"]  # a removal after `until` still counts


def test_the_salt_is_kept_in_the_clone_and_never_in_the_tree(planted: Planted, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(planted.path), str(clone)], check=True)
    a = g.DeployRepo(clone).secret_findings()
    b = g.DeployRepo(clone).secret_findings()
    salt_file = clone / ".git" / "gitops-nb-salt"
    assert salt_file.exists() and oct(salt_file.stat().st_mode & 0o777) == "0o600"
    assert list(a["fingerprint"]) == list(b["fingerprint"])  # stable for the clone
    assert not git(clone, "status", "--porcelain").strip()
    with pytest.raises(g.InputError, match="at least 16"):
        g.DeployRepo(clone).secret_findings(salt="short")


def test_bounds_a_huge_or_binary_file_is_skipped_and_counted(tmp_path: Path) -> None:
    w = RepoWriter(tmp_path / "r")
    token = "ghp_" + rnd.token_hex(18)
    w.commit(
        "big and binary",
        when=T,
        files={
            "dump.txt": ("x" * 100 + "\n") * 11_000 + f"token {token}\n",
            "img.png": "\x89PNG\r\n\x1a\n\x00\x00" + token,
            "ok.sh": f"GH={token}\n",
        },
    )
    f = g.DeployRepo(w.path).secret_findings(salt=SALT)
    assert list(f["path"]) == ["ok.sh"]
    assert f.attrs["skipped"] == {"too_large": 1, "binary": 1}


def test_bad_input_is_a_typed_error(planted: Planted, tmp_path: Path) -> None:
    repo = g.DeployRepo(planted.path)
    with pytest.raises(g.UnknownRevisionError):
        repo.secret_findings(rev="no-such-branch", salt=SALT)
    with pytest.raises(g.InputError, match="after until"):
        repo.secret_findings(since=T + pd.Timedelta("1h"), until=T, salt=SALT)
    with pytest.raises(g.InputError, match="does not exist"):
        repo.secret_findings(rotated=tmp_path / "nope", salt=SALT)
    (tmp_path / "bad").write_text("not-a-fingerprint\n")
    with pytest.raises(g.InputError, match="not a fingerprint"):
        repo.secret_findings(rotated=tmp_path / "bad", salt=SALT)


def _cli(*args: str, env_salt: bool = True) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if env_salt:
        env["GITOPS_NB_SECRETS_SALT"] = SALT
    return subprocess.run(
        [sys.executable, "-m", "gitops_nb", "secrets-audit", *args], capture_output=True, text=True, env=env
    )


def test_cli_gates_until_every_value_is_marked_rotated(planted: Planted, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(planted.path), str(clone)], check=True)
    first = _cli(str(clone))
    assert first.returncode == 1, first.stderr
    assert "not marked rotated" in first.stderr and "secretGenerator-literal" in first.stdout
    out = _cli(str(clone), "--format", "json")
    rows = json.loads(out.stdout)
    fps = sorted({r["fingerprint"] for r in rows})
    assert out.returncode == 1 and len(rows) == 12 and len(fps) == 11
    # rotate all but one: still failing; then the last: passing. The list is read from HEAD.
    w = RepoWriter(clone)
    w.commit("rotated", when=T + pd.Timedelta("3h"), files={".gitops-nb-rotated": "\n".join(fps[:-1]) + "\n"})
    assert _cli(str(clone)).returncode == 1
    listing = "# rotated in INC-12\n" + "\n".join(f"{fp}  rotated 2026-03-02 by alice" for fp in fps) + "\n"
    w.commit("all rotated", when=T + pd.Timedelta("4h"), files={".gitops-nb-rotated": listing})
    done = _cli(str(clone), "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert pd.read_csv(__import__("io").StringIO(done.stdout))["rotated"].all()
    # --rotated FILE overrides; bad input exits 2
    (tmp_path / "none").write_text("")
    assert _cli(str(clone), "--rotated", str(tmp_path / "none")).returncode == 1
    assert _cli(str(tmp_path / "not-a-repo")).returncode == 2
    assert _cli(str(clone), "--since", "yesterday-ish").returncode == 2
    assert _cli(str(clone), "--context", "x", "--snapshot", "y").returncode == 2


def test_no_value_leaves_any_output(planted: Planted, tmp_path: Path) -> None:
    """Plant values in every form (clear and base64), then search every output: the frame, its attrs,
    the CLI in each format, the progress lines, the runbook's executed notebook, its HTML report and saved results."""
    forms = planted.forms()
    assert all(len(s) >= 12 for s in forms)
    repo = g.DeployRepo(planted.path)
    said: list[str] = []
    f = repo.secret_findings(salt=SALT, progress=said.append)
    outputs = {"frame": f.to_json() + f.to_csv() + repr(f.attrs), "progress": "\n".join(said)}
    for fmt in ("table", "json", "csv"):
        res = _cli(str(planted.path), "--format", fmt)
        outputs[f"cli-{fmt}"] = res.stdout + res.stderr
    import os

    res = subprocess.run(  # the runbook: papermill, the HTML report, the saved results
        [
            sys.executable,
            "-m",
            "gitops_nb",
            "runbook",
            "run",
            "secrets-audit",
            "--incident",
            "SEC-1",
            "--root",
            str(tmp_path / "incidents"),
            "-p",
            f"repo_path={planted.path}",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    outputs["runbook"] = res.stdout + res.stderr
    folder = tmp_path / "incidents" / "SEC-1"
    files = [p for p in folder.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"01-secrets_audit.ipynb", "01-secrets_audit.html", "secret_findings.parquet", "summary.json"} <= names
    summary = json.loads(next(p for p in files if p.name == "summary.json").read_text())
    assert summary["findings"] == len(f) and summary["unrotated_values"] == f["fingerprint"].nunique()
    html = next(p for p in files if p.suffix == ".html").read_text()
    own = set(repo.secret_findings()["fingerprint"])  # under the clone's own salt, as the runbook ran
    assert own and all(fp in html for fp in own)  # the report does show what to rotate
    salt = (planted.path / ".git" / "gitops-nb-salt").read_text().strip()
    for s in [*forms, SALT, salt]:
        for where, text in outputs.items():
            assert s not in text, f"a planted secret leaked into {where}"
        for p in files:
            assert s.encode() not in p.read_bytes(), f"a planted secret leaked into {p.name}"


# -- deployed: the cluster's Argo CD history, live and from a snapshot ---------------------------------


@pytest.mark.sandbox
def test_deployed_from_argo_cd_history_live_and_from_a_snapshot(sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A Secret Argo CD deployed is `deployed` (when, by which Application); one in a file no Application
    builds, and one committed after the last deploy, are not. A snapshot gives the same answer."""
    from gitops_nb.cluster.argocd import application_manifest, apply_application, wait_app

    from .conftest import app_files, remove_app, unique

    seed = RepoWriter(tmp_path / "seed")
    name, ns = unique("s-shop"), unique("s-ns")
    files = app_files("shop", "1.0.0", env="production")
    files["apps/shop/base/kustomization.yaml"] = "resources:\n- deployment.yaml\n- secret.yaml\n"
    shipped, stray, late = _v("shipped"), _v("stray"), _v("late")
    files["apps/shop/base/secret.yaml"] = (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {shipped}\n"
    )
    files["notes/old-secret.yaml"] = (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: old\nstringData:\n  password: {stray}\n"
    )
    now = pd.Timestamp.now(tz="UTC").floor("s")
    first = seed.commit("shop with a db secret", when=now - pd.Timedelta("2m"), files=files)
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(seed.path), str(origin)], check=True)
    subprocess.run(["git", "clone", "-q", str(origin), str(tmp_path / "work")], check=True)
    w = RepoWriter(tmp_path / "work")
    api = sandbox.api_client()
    apply_application(api, application_manifest(name, f"file://{origin}", "apps/shop/overlays/production", ns))
    try:
        cluster = g.Cluster(kubeconfig=str(sandbox.kubeconfig))
        g.refresh(cluster, name)
        wait_app(api, name, revision=first, timeout=120)
        assert first in set(cluster.app_history(name)["revision"])
        # a new value committed after the deploy (never pushed): not deployed; the shipped one it replaced still is
        late_sha = w.commit(
            "rotate the db password (in clear, again)",
            when=now,
            files={"apps/shop/base/secret.yaml": files["apps/shop/base/secret.yaml"].replace(shipped, late)},
        )
        repo = g.DeployRepo(w.path)
        live = repo.secret_findings(evidence=cluster, salt=SALT)
        by = live.set_index(["path", "sha"])
        row = by.loc[("apps/shop/base/secret.yaml", first)]
        assert row["removed_by_sha"] == late_sha
        assert row["deployed"] and row["deployed_to"] == [name]
        hist = cluster.app_history(name)
        assert row["deployed_at"] == hist[hist["revision"] == first]["deployed_at"].min()
        assert row["deployed_at"] >= row["committed_at"]
        new = by.loc[("apps/shop/base/secret.yaml", late_sha)]
        assert not new["deployed"] and new["deployed_to"] == [] and pd.isna(new["deployed_at"])
        stray_row = by.loc[("notes/old-secret.yaml", first)]  # in the deployed revision, but no app builds it
        assert not stray_row["deployed"] and stray_row["deployed_to"] == []
        saved = g.snapshot(cluster, tmp_path / "evidence")
        again = repo.secret_findings(evidence=g.Snapshot(saved), salt=SALT)
        cols = ["path", "fingerprint", "deployed", "deployed_at", "deployed_to"]
        pd.testing.assert_frame_equal(again[cols], live[cols])
        text = live.to_json() + again.to_json()
        assert all(s not in text for s in (shipped, stray, late))
    finally:
        remove_app(api, name, ns)


def test_regressions_from_real_repos(tmp_path: Path) -> None:
    """What auditing public GitOps repos taught (argocd-example-apps, flux2 examples, a 31k-commit home-ops
    repo): references, names and hashes under secret-looking keys are not secrets; a literal next to them is."""
    real = [_v("real-0"), _v("real-1"), _v("real-2")]
    w = RepoWriter(tmp_path / "r")
    w.commit(
        "shapes seen in real repos",
        when=T,
        files={
            # 1Password references in a Secret and in values; a literal beside them
            "bootstrap/secret.yaml": (
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: op\nstringData:\n"
                "  token: |-\n    op://operator/onepassword/token\n  creds.json: op://kubernetes/op/creds\n"
                f"  literal: {real[0]}\n"
            ),
            "talos/controlplane.yaml": "cluster:\n  secret: op://kubernetes/talos/secret\n  aescbcEncryptionSecret: op://kubernetes/talos/aes\n",
            # annotations and storage-class parameters that name secrets
            "crds.yaml": (
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: x\n"
                "  annotations:\n    cert-manager.io/inject-ca-from-secret: cert-manager/cert-manager-webhook-ca\n"
                "    secret.reloader.stakater.com/reload: app-secret\n"
            ),
            "storageclass.yaml": (
                "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: ceph\nparameters:\n"
                "  csi.storage.k8s.io/provisioner-secret-name: rook-csi-provisioner\n"
                "  csi.storage.k8s.io/provisioner-secret-namespace: rook-ceph\n"
            ),
            # custom tags: Home Assistant !secret, recyclarr !env_var
            "configuration.yaml": "weather:\n- platform: openweathermap\n  api_key: !secret openweathermap_key\n",
            "recyclarr.yml": "sonarr:\n  main:\n    api_key: !env_var SONARR_API_KEY\n",
            # hashes, algorithms, file paths, secret names, references to keys
            "helmrelease.yaml": (
                "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: app\nspec:\n  values:\n"
                '    adminUser:\n      passwordHash: "$2a$10$P/tHQ1DNFXdvX0zRGA8LPeSOyb0JXq9rP3fZ4W8HGTpLV7qHDlWhe"\n'
                "    auth:\n      htpasswd: 'admin:$apr1$Xa9yTbu4$1Vx7z0'\n"
                "    env:\n      EXTERNAL_DNS_RFC2136_TSIG_SECRET_ALG: hmac-sha256\n"
                "    sync:\n      pullSecret: flux-system\n"
                "    controller:\n      defaultTLS:\n        secret: networking/acme-crt-secret\n"
                '    gitea:\n      config:\n        security:\n          PASSWORD_COMPLEXITY: "lower,upper"\n'
                "    includes:\n      secrets: .taskfiles/secrets/Taskfile.yaml\n"
                "    bootstrapAPIKeys:\n    - secretRef:\n        key: {name: emqx, secretKey: X_EMQX_APIKEY_KEY}\n"
                f"    db:\n      password: {real[1]}\n"
            ),
            "runner.yaml": (
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: runner\nspec:\n  template:\n    spec:\n"
                "      containers:\n      - name: c\n        env:\n"
                "        - name: GITHUB_APP_PRIVATE_KEY\n          value: /etc/actions-runner/github_app_private_key\n"
                "        - name: &name KOPIA_PASSWORD\n          value: &pw jellyfin-kopia\n"
                "        - name: COPY_PASSWORD\n          value: *pw\n"
                "        - name: MYSQL_ROOT_PASSWORD\n          value: fake_password\n"  # argocd-example-apps' sock-shop
            ),
            # a SealedSecret's ciphertext under a key a token rule knows (detect-secrets' IBM Cloud IAM) is no token
            "sealed/cloudflare-api-key.yaml": (
                "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: cloudflare-api-key\nspec:\n"
                f"  encryptedData:\n    api-key: AgB{rnd.token_hex(20)}Z\n"  # 44 characters
            ),
            "mkdocs.yaml": "nav:\n- Sealed Secrets: sealed-secrets.md\n",  # a page, not a value
            # YAML in documentation is not a manifest
            "README.md": f"```yaml\nwordpressPassword: {real[2]}\n```\n",
        },
    )
    f = g.DeployRepo(w.path).secret_findings(salt=SALT)
    assert _places(f) == {
        ("bootstrap/secret.yaml", "Secret", "op", "literal", "secret-stringData"),
        ("helmrelease.yaml", "HelmRelease", "app", "spec.values.db.password", "values-key"),
        ("runner.yaml", "Deployment", "runner", "KOPIA_PASSWORD", "env-var"),  # an alias resolves to a literal
        ("runner.yaml", "Deployment", "runner", "COPY_PASSWORD", "env-var"),
        ("runner.yaml", "Deployment", "runner", "MYSQL_ROOT_PASSWORD", "env-var"),  # a value, however fake
    }
    by = f.set_index("key")
    assert by.loc["KOPIA_PASSWORD", "fingerprint"] == by.loc["COPY_PASSWORD", "fingerprint"]
