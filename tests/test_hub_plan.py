"""The upload plan as pure data: adds, upstream's deletion rules, batches and the post-upload check."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kernel_builder.hub.plan import MAX_OPERATIONS_PER_COMMIT, RemoteFile, RemoteState, plan_upload, same_content, verify
from kernel_builder.hub.source import LocalFile, UploadSource, file_digests


def local(path: str, data: bytes = b"x") -> LocalFile:
    git = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return LocalFile(path, Path("/nonexistent") / path, len(data), hashlib.sha256(data).hexdigest(), git)


def remote(path: str, data: bytes = b"x", lfs: bool = False) -> RemoteFile:
    f = local(path, data)
    return RemoteFile(path, f.size, "0" * 40 if lfs else f.git_oid, f.sha256 if lfs else None)


def source(*paths: str, variants=("torch-cpu", "torch-cuda"), card: bool = False) -> UploadSource:
    return UploadSource("o/k", "v1", 1, tuple(variants), tuple(local(p) for p in paths), local("README.md", b"card") if card else None)


UPLOAD = ("build/torch-cpu/a.py", "build/torch-cuda/a.py", "benchmarks/benchmark.py")
REMOTE = ("build/torch-cpu/a.py", "build/torch-cpu/gone.py", "build/torch-rocm/a.py", "benchmarks/benchmark_old.py",
          "benchmarks/data/x.txt", "README.md", ".gitattributes", "docs/notes.md")


def state(exists: bool, paths=REMOTE) -> RemoteState:
    return RemoteState(exists, {p: remote(p) for p in paths})


def test_digests_match_git_and_sha256(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"hello\n")
    size, sha256, git = file_digests(path)
    assert (size, git) == (6, "ce013625030ba8dba906f756967f9e9ca394464a")  # `git hash-object` of "hello\n"
    assert sha256 == hashlib.sha256(b"hello\n").hexdigest()


def test_same_content_uses_sha256_for_lfs_and_the_blob_id_otherwise():
    assert same_content(local("a", b"1"), remote("a", b"1"))
    assert same_content(local("a", b"1"), remote("a", b"1", lfs=True))
    assert not same_content(local("a", b"1"), remote("a", b"2"))
    assert not same_content(local("a", b"1"), remote("a", b"2", lfs=True))


def test_new_branch_deletes_every_build_and_benchmark_file_not_uploaded():
    plan = plan_upload(source(*UPLOAD), state(False))
    assert plan.new_branch
    assert plan.deletes == ("benchmarks/benchmark_old.py", "benchmarks/data/x.txt", "build/torch-cpu/gone.py", "build/torch-rocm/a.py")
    assert plan.unchanged == ("build/torch-cpu/a.py",)
    assert [f.path_in_repo for f in plan.adds] == ["build/torch-cuda/a.py", "benchmarks/benchmark.py"]


def test_existing_branch_deletes_only_inside_uploaded_variants_and_stale_benchmarks():
    plan = plan_upload(source(*UPLOAD), state(True))
    assert plan.deletes == ("benchmarks/benchmark_old.py", "build/torch-cpu/gone.py")


def test_prune_also_deletes_other_variants():
    plan = plan_upload(source(*UPLOAD), state(True), prune=True)
    assert plan.deletes == ("benchmarks/benchmark_old.py", "build/torch-cpu/gone.py", "build/torch-rocm/a.py")


def test_variant_prefix_is_not_a_string_prefix():
    plan = plan_upload(source("build/torch-cpu/a.py", variants=("torch-cpu",)), state(True, ("build/torch-cpu-old/a.py",)))
    assert plan.deletes == ()


def test_unchanged_card_is_not_committed():
    src = source(*UPLOAD, card=True)
    assert plan_upload(src, RemoteState(True, {}, remote("README.md", b"card"))).readme is None
    assert plan_upload(src, RemoteState(True, {}, remote("README.md", b"old"))).readme == src.card
    assert not plan_upload(source(), RemoteState(True, {})).has_changes


def test_batches_hold_at_most_1000_operations_additions_first():
    paths = [f"build/torch-cpu/f{i:04}.py" for i in range(1500)]
    remote_paths = [f"build/torch-cpu/old{i}.py" for i in range(700)]
    plan = plan_upload(source(*paths, variants=("torch-cpu",)), state(True, remote_paths))
    batches = plan.batches()
    assert MAX_OPERATIONS_PER_COMMIT == 1000
    assert [len(b) for b in batches] == [1000, 1000, 200]
    kinds = [op.kind for b in batches for op in b]
    assert kinds == ["add"] * 1500 + ["delete"] * 700
    with pytest.raises(ValueError):
        plan.batches(0)


def test_verify_reports_every_difference():
    src = source(*UPLOAD, card=True)
    plan = plan_upload(src, state(False))
    good = {f.path_in_repo: remote(f.path_in_repo) for f in src.branch_files}
    assert verify(src, plan, good, remote("README.md", b"card")) == []
    bad = dict(good)
    del bad["benchmarks/benchmark.py"]
    bad["build/torch-cpu/a.py"] = remote("build/torch-cpu/a.py", b"other")
    bad["build/torch-rocm/a.py"] = remote("build/torch-rocm/a.py")
    problems = verify(src, plan, bad, None)
    assert problems[0] == "benchmarks/benchmark.py: missing on the Hub"
    assert problems[1].startswith("build/torch-cpu/a.py: the Hub holds different content")
    assert problems[2] == "build/torch-rocm/a.py: still on the Hub but not part of the upload"
    assert problems[3] == "README.md on main does not hold the card"


def test_the_upload_record_withdraws_only_what_this_folder_uploaded(tmp_path):
    from kernel_builder.hub.record import record_key, record_path, remember_upload, withdrawn_variants

    key = record_key("http://127.0.0.1:1/", "kernel", "o/k", "v1")
    other = record_key("http://127.0.0.1:1", "kernel", "o/k", "v2")
    assert withdrawn_variants(tmp_path, key, {"a"}) == ()  # no record: nothing is withdrawn
    remember_upload(tmp_path, key, {"a", "b"}, ())
    remember_upload(tmp_path, other, {"c"}, ())
    assert withdrawn_variants(tmp_path, key, {"a"}) == ("b",)
    assert withdrawn_variants(tmp_path, other, set()) == ("c",)
    remember_upload(tmp_path, key, {"a"}, ("b",))
    assert withdrawn_variants(tmp_path, key, {"a"}) == ()
    record_path(tmp_path).write_text("{not json")
    assert withdrawn_variants(tmp_path, key, set()) == ()  # an unreadable record withdraws nothing
    remember_upload(tmp_path, key, {"a"}, ())
    assert withdrawn_variants(tmp_path, key, set()) == ("a",)
