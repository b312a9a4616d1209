"""`kernel-builder upload` against a Hub on 127.0.0.1 (tests/hubserver.py), with real huggingface_hub.

The kernel is a copy of examples/rms-norm-py built into Python-only variants (no compiler),
so these tests are quick; the compiled round trip through `kernels.get_kernel` is in
test_hub_e2e.py.
"""

from __future__ import annotations

import json
import shutil

import pytest

from hubtest_util import (ALICE_TOKEN, BOB_TOKEN, RMS_REPO, built_rms, fresh_copy, hub_environment, hub_server, kb_subprocess, local_tree, published,
                          rehash, use_hub)
from kbtest_util import assert_bad_input, invoke

__all__ = ["built_rms"]  # the fixture, imported for pytest


@pytest.fixture
def hub():
    with hub_server() as server:
        yield server


@pytest.fixture
def kernel(built_rms, tmp_path):
    return fresh_copy(built_rms, tmp_path)


@pytest.fixture
def on_hub(hub, tmp_path, monkeypatch):
    use_hub(monkeypatch, hub, tmp_path / "hf-home")
    return hub


def upload(kernel, *args):
    return invoke("upload", kernel, *args)


def ok(result):
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def test_upload_publishes_the_plan_and_the_card(on_hub, kernel, tmp_path):
    hub = on_hub
    ok(invoke("fill-card", kernel))
    report_path = tmp_path / "report.json"
    ok(upload(kernel, "--output-json", report_path))

    repo = hub.repo(RMS_REPO)
    assert repo.repo_type == "kernel" and not repo.private
    assert set(repo.branches) == {"main", "v1"}
    assert published(hub, RMS_REPO, "v1") == local_tree(kernel)
    assert hub.files(RMS_REPO, "main")["README.md"].data == (kernel / "build" / "CARD.md").read_bytes()
    assert "build/torch-cpu/__init__.py" not in hub.files(RMS_REPO, "main"), "variants go to the version branch only"
    assert [c.message for c in hub.history(RMS_REPO, "v1")][0] == "Uploaded using `kernel-builder`."

    report = json.loads(report_path.read_text())
    assert report["status"] == "uploaded" and report["repo_id"] == RMS_REPO and report["branch"] == "v1"
    assert report["url"] == f"{hub.url}/kernels/{RMS_REPO}/tree/v1" and report["pull_requests"] == []
    assert sorted(report["added"]) == sorted([*local_tree(kernel), "README.md (main)"])


def test_unchanged_reupload_makes_no_commit(on_hub, kernel, tmp_path):
    ok(upload(kernel))
    before = len(on_hub.history(RMS_REPO, "v1"))
    result = ok(upload(kernel, "--output-json", tmp_path / "again.json"))
    assert "no changes" in result.stdout
    assert json.loads((tmp_path / "again.json").read_text())["status"] == "no_changes"
    assert len(on_hub.history(RMS_REPO, "v1")) == before


def test_a_file_removed_from_a_variant_is_deleted_and_nothing_else(on_hub, kernel):
    ok(upload(kernel))
    variant = kernel / "build" / "torch-cpu"
    (variant / "defaults.json").unlink()
    rehash(variant)
    before = published(on_hub, RMS_REPO, "v1")
    ok(upload(kernel))
    after = published(on_hub, RMS_REPO, "v1")
    assert set(before) - set(after) == {"build/torch-cpu/defaults.json"}
    assert after == local_tree(kernel)


def test_a_variant_removed_here_is_deleted_one_never_uploaded_from_here_is_kept(on_hub, kernel, tmp_path):
    ok(upload(kernel))
    before = published(on_hub, RMS_REPO, "v1")
    cuda_files = {p for p in before if p.startswith("build/torch-cuda/")}
    assert cuda_files

    # Another folder (another machine, a fresh clone) without torch-cuda: upstream's rule on an
    # existing branch keeps it, since this folder never uploaded it.
    elsewhere = fresh_copy(kernel, tmp_path / "elsewhere")
    shutil.rmtree(elsewhere / "build" / ".kernel-builder", ignore_errors=True)
    shutil.rmtree(elsewhere / "build" / "torch-cuda")
    result = ok(upload(elsewhere))
    assert published(on_hub, RMS_REPO, "v1") == before
    assert "no changes" in result.stdout

    # The folder that uploaded it no longer holds it: the variant was withdrawn.
    shutil.rmtree(kernel / "build" / "torch-cuda")
    dry = ok(upload(kernel, "--dry-run"))
    assert "every file under build/torch-cuda/ (uploaded from this folder before, no longer in it)" in dry.stdout
    report_path = tmp_path / "report.json"
    ok(upload(kernel, "--output-json", report_path))
    after = published(on_hub, RMS_REPO, "v1")
    assert set(before) - set(after) == cuda_files, "exactly the removed variant's files are deleted"
    assert all(after[p] == before[p] for p in after)
    report = json.loads(report_path.read_text())
    assert report["withdrawn"] == ["torch-cuda"] and sorted(report["deleted"]) == sorted(cuda_files)
    ok(upload(kernel))  # and it is withdrawn once: nothing left to delete
    assert published(on_hub, RMS_REPO, "v1") == after


def test_prune_deletes_every_variant_not_uploaded(on_hub, kernel, tmp_path):
    ok(upload(kernel))
    before = published(on_hub, RMS_REPO, "v1")
    cuda_files = {p for p in before if p.startswith("build/torch-cuda/")}
    elsewhere = fresh_copy(kernel, tmp_path / "elsewhere")
    shutil.rmtree(elsewhere / "build" / ".kernel-builder", ignore_errors=True)
    shutil.rmtree(elsewhere / "build" / "torch-cuda")
    ok(upload(elsewhere, "--prune"))
    after = published(on_hub, RMS_REPO, "v1")
    assert set(before) - set(after) == cuda_files
    assert all(after[p] == before[p] for p in after)


def test_new_branch_drops_stale_build_files_inherited_from_main(on_hub, kernel):
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=on_hub.url, token=ALICE_TOKEN)
    api.create_repo(RMS_REPO, repo_type="kernel")
    stale = ["build/torch27-cxx11-cpu-x86_64-linux/__init__.py", "benchmarks/benchmark_old.py", "benchmarks/data/input.txt"]
    api.create_commit(RMS_REPO, repo_type="kernel", commit_message="legacy layout",
                      operations=[CommitOperationAdd(p, b"old\n") for p in [*stale, "notes.md"]])
    ok(upload(kernel))
    v1 = on_hub.files(RMS_REPO, "v1")
    assert not set(stale) & set(v1), "a new branch starts from main but keeps only this upload's build/ and benchmarks/"
    assert "notes.md" in v1 and ".gitattributes" in v1
    assert set(stale) <= set(on_hub.files(RMS_REPO, "main")), "main is left alone"


def test_existing_branch_drops_stale_benchmarks_only(on_hub, kernel):
    ok(upload(kernel))
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=on_hub.url, token=ALICE_TOKEN)
    extra = {"benchmarks/benchmark_old.py": b"x\n", "benchmarks/helpers/util.py": b"y\n", "build/torch26-cxx11-cpu-x86_64-linux/x.py": b"z\n"}
    api.create_commit(RMS_REPO, repo_type="kernel", revision="v1", commit_message="other uploads",
                      operations=[CommitOperationAdd(p, d) for p, d in extra.items()])
    (kernel / "benchmarks").mkdir()
    (kernel / "benchmarks" / "benchmark.py").write_text("# benchmark\n")
    ok(upload(kernel))
    v1 = on_hub.files(RMS_REPO, "v1")
    assert "benchmarks/benchmark_old.py" not in v1
    assert "benchmarks/helpers/util.py" in v1 and "build/torch26-cxx11-cpu-x86_64-linux/x.py" in v1
    assert v1["benchmarks/benchmark.py"].data == b"# benchmark\n"


def test_commits_hold_at_most_the_batch_size(on_hub, kernel):
    from kernel_builder.hub.source import collect_source
    from kernel_builder.hub.upload import UploadOptions, upload as run_upload

    result = run_upload(collect_source(kernel), UploadOptions(max_operations=3))
    history = on_hub.history(RMS_REPO, "v1")
    messages = [c.message for c in history[: len(result.commits)]][::-1]
    assert len(result.commits) == 3  # 8 files in commits of 3
    assert messages == [f"Uploaded using `kernel-builder`. (batch {i}/3)" for i in (1, 2, 3)]
    for newer, older in zip(history, history[1:4]):
        changed = {p for p in set(newer.files) | set(older.files) if newer.files.get(p) != older.files.get(p)}
        assert len(changed) <= 3
    assert published(on_hub, RMS_REPO, "v1") == local_tree(kernel)


def test_branch_comes_from_option_then_build_toml_then_version(kernel, tmp_path):
    def branch(*args):
        out = tmp_path / "plan.json"
        ok(upload(kernel, "--dry-run", "--output-json", out, *args))
        return json.loads(out.read_text())["branch"]

    assert branch() == "v1"
    toml = kernel / "build.toml"
    toml.write_text(toml.read_text().replace(f'repo-id = "{RMS_REPO}"', f'repo-id = "{RMS_REPO}"\nbranch = "dev"'))
    assert branch() == "dev"
    assert branch("--branch", "release-1") == "release-1"


def test_dry_run_makes_no_connection(hub, kernel, tmp_path, monkeypatch):
    import socket

    use_hub(monkeypatch, hub, tmp_path / "hf-home")

    def no_network(*args, **kwargs):
        raise AssertionError("the dry run opened a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    ok(invoke("fill-card", kernel))
    out = tmp_path / "plan.json"
    result = ok(upload(kernel, "--dry-run", "--output-json", out))
    assert hub.requests == []
    assert "branch:     v1" in result.stdout and "build/torch-cpu/metadata.json" in result.stdout and "README.md" in result.stdout
    assert "delete:" in result.stdout and "total: 9 files" in result.stdout
    plan = json.loads(out.read_text())
    assert plan["status"] == "dry_run" and plan["bytes"] == sum(len(d) for d in local_tree(kernel).values()) + (kernel / "build" / "CARD.md").stat().st_size
    assert {a["path"] for a in plan["adds"]} == set(local_tree(kernel))


def test_dirty_provenance_is_a_warning(kernel):
    variant = kernel / "build" / "torch-cpu"
    data = json.loads((variant / "metadata.json").read_text())
    rehash(variant, provenance={**data.get("provenance", {}), "kernel": {"commit": "a" * 40, "dirty": True}})
    result = ok(upload(kernel, "--dry-run"))
    assert "torch-cpu was built from a work tree with uncommitted changes" in result.stderr


# ---- bad input: exit 2, a clear message, no traceback, no request


def test_no_build_folder(kernel, tmp_path):
    shutil.rmtree(kernel / "build")
    assert_bad_input(upload(kernel, "--dry-run"), "no build variants found", str(kernel))


def test_variants_disagree_on_version(kernel):
    rehash(kernel / "build" / "torch-cuda", version=2)
    assert_bad_input(upload(kernel, "--dry-run"), "do not agree on the kernel version", "torch-cpu: 1", "torch-cuda: 2")


@pytest.mark.parametrize("repo_id", ["no-owner", "a/b/c", "kb-test/bad name", "kb-test/a--b"])
def test_bad_repo_id(kernel, repo_id):
    assert_bad_input(upload(kernel, "--dry-run", "--repo-id", repo_id), "--repo-id", "not a Hub repository id")


def test_missing_repo_id(kernel):
    toml = kernel / "build.toml"
    toml.write_text(toml.read_text().replace("[general.hub]\n", "").replace(f'repo-id = "{RMS_REPO}"\n', ""))
    assert_bad_input(upload(kernel, "--dry-run"), "no repository id", "--repo-id", "[general.hub]")


def test_bad_branch(kernel):
    assert_bad_input(upload(kernel, "--dry-run", "--branch", "../v1"), "--branch", "not a usable branch name")


# ---- refusals


def test_variant_failing_check_builds_is_refused(hub, kernel, tmp_path, monkeypatch):
    use_hub(monkeypatch, hub, tmp_path / "hf-home")
    (kernel / "build" / "torch-cpu" / "__init__.py").write_text("# edited after the build\n")
    result = upload(kernel)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "keep these variants off the Hub" in result.stderr and "digest does not match" in result.stderr
    assert hub.requests == []


def test_variant_failing_the_portability_gate_is_refused(kernel, tmp_path):
    import subprocess

    variant = kernel / "build" / "torch213-cxx11-cpu-x86_64-linux"
    variant.mkdir()
    ident = "_rms_norm_py_cpu_abc1234"
    source = tmp_path / "ext.c"
    source.write_text(f"int PyInit_{ident}(void) {{ return 0; }}\nint leaked_helper(void) {{ return 1; }}\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(variant / f"{ident}.abi3.so"), str(source)], check=True)
    (variant / "_ops.py").write_text(f"import torch\nfrom . import {ident}\nops = torch.ops.{ident}\n")
    (variant / "__init__.py").write_text("from ._ops import ops\n__all__ = []\n")
    base = json.loads((kernel / "build" / "torch-cpu" / "metadata.json").read_text())
    (variant / "metadata.json").write_text(json.dumps({**base, "id": ident, "digest": {}}))
    rehash(variant)
    result = upload(kernel, "--dry-run")
    assert result.exit_code == 1, result.output
    assert "leaked_helper" in result.stderr and "torch213-cxx11-cpu-x86_64-linux" in result.stderr


def test_forbidden_namespace_is_explained_without_the_token(hub, kernel, tmp_path):
    env = hub_environment(hub, tmp_path / "hf-home", BOB_TOKEN)
    result = kb_subprocess("-v", "upload", kernel, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "403" in result.stderr and "publishing rights" in result.stderr and "--create-pr" in result.stderr
    assert "Traceback" not in result.stderr
    assert BOB_TOKEN not in result.stdout + result.stderr
    assert BOB_TOKEN in hub.tokens_seen, "HF_TOKEN was used"
    assert ("kernel", RMS_REPO) not in hub.state.repos


def test_missing_or_rejected_token(hub, kernel, tmp_path):
    result = kb_subprocess("upload", kernel, env=hub_environment(hub, tmp_path / "hf-home", token=None))
    assert result.returncode == 2 and "no Hub token" in result.stderr and "HF_TOKEN" in result.stderr
    assert hub.requests == []
    result = kb_subprocess("upload", kernel, env=hub_environment(hub, tmp_path / "hf-home", token="hf_notAValidToken"))
    assert result.returncode == 1 and "did not accept the token (HTTP 401)" in result.stderr
    assert "hf_notAValidToken" not in result.stderr + result.stdout


def test_token_is_never_printed(hub, kernel, tmp_path):
    hub.add_fault("commit", "status", status=503)
    hub.add_fault("refs", "drop")
    out = tmp_path / "result.json"
    env = hub_environment(hub, tmp_path / "hf-home", ALICE_TOKEN)
    result = kb_subprocess("-v", "upload", kernel, "--output-json", out, env={**env, "HF_DEBUG": ""})
    assert result.returncode == 0, result.stderr
    assert ALICE_TOKEN in hub.tokens_seen
    for text in (result.stdout, result.stderr, out.read_text()):
        assert ALICE_TOKEN not in text and "SECRET" not in text


def test_pull_request_from_a_reader(hub, kernel, tmp_path, monkeypatch):
    use_hub(monkeypatch, hub, tmp_path / "hf-home", ALICE_TOKEN)
    ok(upload(kernel))
    v1_before = hub.files(RMS_REPO, "v1")
    variant = kernel / "build" / "torch-cpu"
    (variant / "defaults.json").write_text('{"eps": 1e-5}\n')
    rehash(variant)

    monkeypatch.setenv("HF_TOKEN", BOB_TOKEN)
    out = tmp_path / "pr.json"
    result = ok(upload(kernel, "--create-pr", "--output-json", out))
    report = json.loads(out.read_text())
    assert report["status"] == "pull_request_created" and report["pull_requests"] == [f"{hub.url}/kernels/{RMS_REPO}/discussions/1"]
    assert "pull request:" in result.stdout
    assert hub.files(RMS_REPO, "v1") == v1_before, "the branch itself is untouched"
    assert hub.files(RMS_REPO, "refs/pr/1")["build/torch-cpu/defaults.json"].data == b'{"eps": 1e-5}\n'

    # A pull request needs an existing branch, and a reader cannot create one.
    result = upload(kernel, "--create-pr", "--branch", "v2")
    assert result.exit_code == 1 and "ask a maintainer" in result.stderr and "v2" in result.stderr
    assert "v2" not in hub.repo(RMS_REPO).branches


def test_pull_request_needs_an_existing_repository(on_hub, kernel):
    result = upload(kernel, "--create-pr")
    assert result.exit_code == 1 and "does not exist on the Hub" in result.stderr and "--create-pr needs an existing repository" in result.stderr


def test_private_and_model_repositories(on_hub, kernel):
    ok(upload(kernel, "--private", "--repo-type", "model"))
    repo = on_hub.repo(RMS_REPO, "model")
    assert repo.private and ("kernel", RMS_REPO) not in on_hub.state.repos


def test_build_and_upload_publishes_what_it_built(on_hub, kernel):
    # A variant left in build/ by an earlier build is not part of this build: it stays local.
    shutil.copytree(kernel / "build" / "torch-cpu", kernel / "build" / "torch-xpu")
    result = ok(invoke("build-and-upload", kernel, "-q"))
    assert "wrote" in result.stdout and (kernel / "build" / "CARD.md").is_file()
    stored = published(on_hub, RMS_REPO, "v1")
    assert stored == {p: d for p, d in local_tree(kernel).items() if not p.startswith("build/torch-xpu/")}
    assert on_hub.files(RMS_REPO, "main")["README.md"].data == (kernel / "build" / "CARD.md").read_bytes()


def test_progress_for_large_uploads():
    import io

    from kernel_builder.hub.progress import LARGE_UPLOAD_BYTES, UploadProgress

    stream = io.StringIO()
    plain = UploadProgress(live=False, stream=stream)
    plain.start(4 * LARGE_UPLOAD_BYTES, 8)
    for _ in range(4):
        plain.advance(LARGE_UPLOAD_BYTES, 2)
    plain.finish()
    lines = stream.getvalue().splitlines()
    assert lines[-1] == "uploaded 80.0 MB of 80.0 MB" and len(lines) == 4

    small = io.StringIO()
    quiet_for_small = UploadProgress(live=False, stream=small)
    quiet_for_small.start(1000, 1)
    quiet_for_small.advance(1000, 1)
    assert small.getvalue() == ""

    bar_stream = io.StringIO()
    bar = UploadProgress(live=True, stream=bar_stream)
    bar.start(2 * LARGE_UPLOAD_BYTES, 2)
    assert bar._bar is not None
    bar.advance(LARGE_UPLOAD_BYTES, 1)
    bar.reset_to(0)  # a commit that is sent again counts its bytes once
    bar.advance(2 * LARGE_UPLOAD_BYTES, 2)
    assert bar._bar.tasks[0].completed == 2 * LARGE_UPLOAD_BYTES
    bar.finish()
