"""Fixture Hub repos and a real Hub mirror (olah 0.5.4, offline mode) for the hub/provenance/lock tests.

Repos are non-bare git work trees under <mirrors>/models/<org>/<name>. LFS files are committed as
git-lfs pointer files with their objects under .git/lfs/objects/<aa>/<bb>/<oid>, exactly git-lfs's own
layout, so no git-lfs binary is needed (shared/reference/hub.md, "olah recipe").

Where olah cannot serve a case (HTTP 500, a slow server) the tests use the small stdlib servers below,
one per case.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

GIT_ENV = {
    "GIT_AUTHOR_NAME": "fixture", "GIT_AUTHOR_EMAIL": "fixture@example.invalid",
    "GIT_COMMITTER_NAME": "fixture", "GIT_COMMITTER_EMAIL": "fixture@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    out = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env)
    return out.stdout.strip()


def lfs_pointer(data: bytes) -> tuple[str, bytes]:
    oid = hashlib.sha256(data).hexdigest()
    return oid, f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n".encode()


def card(front: dict, body: str = "A fixture model.\n") -> str:
    import yaml
    return "---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n\n" + body


def safetensors_bytes(seed: int, shape: tuple[int, ...] = (16, 16)) -> bytes:
    from safetensors.numpy import save
    rng = np.random.default_rng(seed)
    return save({"weight": rng.standard_normal(shape).astype(np.float32)})


def gguf_bytes(folder: Path, base_repo: str) -> bytes:
    import gguf
    path = folder / f"gguf-{base_repo.replace('/', '_')}.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_uint32("general.base_model.count", 1)
    writer.add_string("general.base_model.0.repo_url", f"https://huggingface.co/{base_repo}")
    writer.add_tensor("w", np.ones((8, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


@dataclass
class FixtureRepo:
    root: Path                         # the git work tree
    repo_id: str
    commits: list[str] = field(default_factory=list)
    lfs: dict[str, bytes] = field(default_factory=dict)   # path -> real bytes (for LFS files)

    @property
    def head(self) -> str:
        return self.commits[-1]


class RepoBuilder:
    """Builds git work trees that olah serves, commit by commit."""

    def __init__(self, mirrors: Path) -> None:
        self.mirrors = mirrors

    def create(self, repo_id: str) -> FixtureRepo:
        root = self.mirrors / "models" / repo_id
        root.mkdir(parents=True)
        git(root, "init", "-q", "-b", "main")
        return FixtureRepo(root=root, repo_id=repo_id)

    def commit(self, repo: FixtureRepo, files: dict[str, str | bytes], lfs: dict[str, bytes] | None = None,
               message: str = "update", tamper: set[str] | None = None) -> str:
        """Write files (text or bytes) and LFS files (pointer + object), commit, return the SHA.

        `tamper`: LFS paths whose stored object gets different bytes than the pointer's oid says.
        """
        for rel, content in files.items():
            path = repo.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        for rel, data in (lfs or {}).items():
            oid, pointer = lfs_pointer(data)
            path = repo.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pointer)
            obj = repo.root / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
            obj.parent.mkdir(parents=True, exist_ok=True)
            served = bytearray(data)
            if tamper and rel in tamper:
                served[-1] ^= 0xFF
            obj.write_bytes(bytes(served))
            repo.lfs[rel] = data
        if lfs:
            attrs = repo.root / ".gitattributes"
            lines = set(attrs.read_text().splitlines()) if attrs.exists() else set()
            lines |= {f"{rel} filter=lfs diff=lfs merge=lfs -text" for rel in lfs}
            attrs.write_text("\n".join(sorted(lines)) + "\n")
        git(repo.root, "add", "-A")
        git(repo.root, "commit", "-q", "-m", message)
        sha = git(repo.root, "rev-parse", "HEAD")
        repo.commits.append(sha)
        return sha


def _die_with_parent() -> None:
    """Linux: olah is killed when the test process that started it dies (a killed xdist worker)."""
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Olah:
    """olah 0.5.4 in offline mode on 127.0.0.1, serving <workdir>/mirrors."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.mirrors = workdir / "mirrors"
        self.mirrors.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "olah.out"

    def start(self, probe_repo: str) -> None:
        config = self.workdir / "olah.toml"
        config.write_text(
            "[basic]\n"
            f'host = "127.0.0.1"\nport = {self.port}\n'
            f'repos-path = "{self.workdir / "cache"}"\n'
            f'mirrors-path = ["{self.mirrors}"]\n'
            'mirror-scheme = "http"\n'
            f'mirror-netloc = "127.0.0.1:{self.port}"\n'
            f'mirror-lfs-netloc = "127.0.0.1:{self.port}"\n'
            "[accessibility]\noffline = true\n")
        cli = Path(sys.executable).parent / "olah-cli"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([str(cli), "-c", str(config), "--log-path", str(self.workdir / "logs")],
                                         stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir,
                                         preexec_fn=_die_with_parent)
        probe = f"{self.url}/api/models/{probe_repo}/revision/main"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"olah exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(probe, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("olah did not become ready in 30 s")

    def requests(self) -> list[str]:
        """Request lines olah logged (uvicorn access log), for asserting what was fetched."""
        return [line for line in self.log.read_text(errors="replace").splitlines() if '"GET ' in line or '"HEAD ' in line
                or '"POST ' in line]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class _CaseHandler(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str]]
    mode = "500"
    delay = 5.0

    def _answer(self) -> None:
        self.seen.append((self.command, self.path, self.headers.get("Authorization", "")))
        if self.mode.startswith("split:") and not self.path.startswith("/api/"):
            self._relay(self.mode.split(":", 1)[1] + self.path)
            return
        if self.mode.startswith(("redirect:", "split:")):   # API requests are redirected to <base URL>
            self.send_response(307)
            self.send_header("Location", self.mode.split(":", 1)[1] + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.mode == "slow":
            time.sleep(self.delay)
        body = json.dumps({"error": "internal"}).encode()
        self.send_response(500 if self.mode == "500" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass

    def _relay(self, url: str) -> None:
        """Serve a file request by fetching it from the real server (a front that owns /resolve/)."""
        request = urllib.request.Request(url, method=self.command)
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                status, headers, body = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            status, headers, body = exc.code, exc.headers, exc.read()
        self.send_response(status)
        for name in ("Content-Type", "Content-Length", "ETag", "X-Repo-Commit", "X-Error-Code"):
            if headers.get(name) is not None:
                self.send_header(name, headers[name])
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


class CaseServer:
    """A stdlib server for one case olah cannot produce: every request gets HTTP 500, or waits `delay` s."""

    def __init__(self, mode: str, delay: float = 5.0) -> None:
        self.seen: list[tuple[str, str, str]] = []      # (method, path, Authorization header)
        handler = type("Handler", (_CaseHandler,), {"mode": mode, "delay": delay, "seen": self.seen})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CaseServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the fixture world: one olah per test session (per xdist worker) ---------------------------

@dataclass
class HubWorld:
    olah: Olah
    repos: dict[str, FixtureRepo]
    tags: dict[str, str]                  # "repo_id@tag" -> commit
    signing_key: Path                     # public key (PEM) that signed acme/signed
    other_key: Path                       # a public key that did not

    @property
    def url(self) -> str:
        return self.olah.url


def _keypair(folder: Path, name: str) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    private = folder / f"{name}.key.pem"
    public = folder / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def build_world(workdir: Path) -> HubWorld:
    olah = Olah(workdir)
    b = RepoBuilder(olah.mirrors)
    repos: dict[str, FixtureRepo] = {}
    tags: dict[str, str] = {}
    config = json.dumps({"architectures": ["TinyModel"], "hidden_size": 16, "padding": "x" * 200})

    # An originator (Qwen is in rules/origins.yaml as a CN originator): three commits and a tag.
    base = repos["Qwen/tiny-base"] = b.create("Qwen/tiny-base")
    b.commit(base, {"README.md": card({"license": "apache-2.0", "library_name": "transformers"}),
                    "config.json": config}, {"model.safetensors": safetensors_bytes(0)}, message="first")
    b.commit(base, {"LICENSE": "Apache License 2.0 (fixture text)\n" * 20}, message="license")
    git(base.root, "tag", "v1.0")
    tags["Qwen/tiny-base@v1.0"] = base.head
    b.commit(base, {"notes/changes.txt": "third commit\n" * 20}, {"model.safetensors": safetensors_bytes(1)},
             message="new weights")

    # A fine-tune in another org, and a quantized derivative of it by a re-uploader.
    chat = repos["acme/tiny-chat"] = b.create("acme/tiny-chat")
    b.commit(chat, {"README.md": card({"license": "apache-2.0", "base_model": "Qwen/tiny-base",
                                       "base_model_relation": "finetune"}),
                    "config.json": config}, {"model.safetensors": safetensors_bytes(2)})
    b.commit(chat, {"generation_config.json": json.dumps({"temperature": 0.7, "pad": "y" * 200})})
    quant = repos["bartowski/tiny-chat-GGUF"] = b.create("bartowski/tiny-chat-GGUF")
    b.commit(quant, {"README.md": card({"license": "apache-2.0", "base_model": "acme/tiny-chat",
                                        "base_model_relation": "quantized", "quantized_by": "bartowski"})},
             {"tiny-chat.safetensors": safetensors_bytes(3)})

    # Served bytes differ from the LFS oid of the pointer.
    tampered = repos["acme/tampered"] = b.create("acme/tampered")
    b.commit(tampered, {"README.md": card({"license": "mit"}), "config.json": config},
             {"model.safetensors": safetensors_bytes(4)}, tamper={"model.safetensors"})

    # Lineage that loops, and lineage that points at nothing.
    for name, parent in (("loop/a", "loop/b"), ("loop/b", "loop/a")):
        repo = repos[name] = b.create(name)
        b.commit(repo, {"README.md": card({"license": "mit", "base_model": parent}), "config.json": config})
    orphan = repos["acme/orphan"] = b.create("acme/orphan")
    b.commit(orphan, {"README.md": card({"license": "mit", "base_model": "ghost/missing-model"}),
                      "config.json": config})

    # A chain deeper than the lineage depth limit (rules/hub.yaml lineage_max_depth: 8).
    for i in range(10):
        repo = repos[f"deep/m{i}"] = b.create(f"deep/m{i}")
        b.commit(repo, {"README.md": card({"license": "mit", "base_model": f"deep/m{i + 1}"}), "config.json": config})

    # 50 LFS shards, for --metadata-only.
    sharded = repos["acme/sharded"] = b.create("acme/sharded")
    shards = {f"model-{i:05d}-of-00050.safetensors": safetensors_bytes(100 + i, (8, 8)) for i in range(1, 51)}
    index = {"metadata": {"total_size": sum(len(v) for v in shards.values())},
             "weight_map": {f"layer{i}.weight": name for i, name in enumerate(shards)}}
    b.commit(sharded, {"README.md": card({"license": "mit"}), "config.json": config,
                       "model.safetensors.index.json": json.dumps(index, indent=1),
                       "tokenizer_config.json": json.dumps({"model_max_length": 512, "pad": "z" * 200})}, shards)

    # A GGUF whose only lineage is its header (general.base_model.*): no card base_model.
    gguf_repo = repos["acme/tiny-gguf"] = b.create("acme/tiny-gguf")
    b.commit(gguf_repo, {"README.md": card({"license": "apache-2.0"})},
             {"tiny.gguf": gguf_bytes(workdir, "Qwen/tiny-base")})

    # A repo shipping an OpenSSF model-signing signature over its real bytes.
    signing_key, signing_pub = _keypair(workdir, "publisher")
    _other_key, other_pub = _keypair(workdir, "stranger")
    signed = repos["acme/signed"] = b.create("acme/signed")
    files: dict[str, str | bytes] = {"README.md": card({"license": "mit"}), "config.json": config}
    weights = {"model.safetensors": safetensors_bytes(5)}
    staging = workdir / "signing-staging"
    staging.mkdir()
    for rel, content in {**files, **weights}.items():
        (staging / rel).write_bytes(content.encode() if isinstance(content, str) else content)
    from model_signing import signing
    signing.Config().use_elliptic_key_signer(private_key=str(signing_key)).sign(staging, staging / "model.sig")
    files["model.sig"] = (staging / "model.sig").read_bytes()
    b.commit(signed, files, weights)

    olah.start("Qwen/tiny-base")
    return HubWorld(olah=olah, repos=repos, tags=tags, signing_key=signing_pub, other_key=other_pub)
