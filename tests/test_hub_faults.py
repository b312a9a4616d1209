"""Faults at every step of an upload: retries that are shown, and no partial commit on failure.

The local Hub (tests/hubserver.py) injects 5xx answers, waits longer than the client's
timeout (KERNEL_BUILDER_HUB_TIMEOUT=1 s here) and dropped connections, before or after it
processed the request. The CLI runs in a subprocess so that its real stderr is seen.
"""

from __future__ import annotations

import pytest

from hubtest_util import RMS_REPO, built_rms, fresh_copy, hub_environment, hub_server, kb_subprocess, local_tree, published, use_hub

__all__ = ["built_rms"]

TRANSIENT = [
    ("create_repo", "status", {"status": 503}),
    ("refs", "drop", {}),
    ("tree", "timeout", {"delay": 2.0}),
    ("branch", "status", {"status": 500}),
    ("preupload", "drop", {}),
    ("commit", "status", {"status": 502}),
    ("commit", "timeout", {"delay": 2.0}),
    ("commit", "drop", {}),
    ("commit", "drop_after", {}),  # the commit lands, its answer is lost
    ("validate_yaml", "status", {"status": 503}),
]


@pytest.fixture
def kernel(built_rms, tmp_path):
    kernel = fresh_copy(built_rms, tmp_path)
    result = kb_subprocess("fill-card", kernel)
    assert result.returncode == 0, result.stderr
    return kernel


@pytest.mark.parametrize("endpoint,kind,extra", TRANSIENT, ids=[f"{e}-{k}" for e, k, _ in TRANSIENT])
def test_transient_fault_is_retried(kernel, tmp_path, endpoint, kind, extra):
    with hub_server() as hub:
        hub.add_fault(endpoint, kind, **extra)
        result = kb_subprocess("upload", kernel, env=hub_environment(hub, tmp_path / "hf-home"))
        assert result.returncode == 0, result.stderr
        outcomes = [r.outcome for r in hub.requests if r.endpoint == endpoint]
        expected = {"status": str(extra.get("status")), "timeout": "timeout"}.get(kind, "dropped")
        assert outcomes[0] == expected and len(outcomes) >= 2, outcomes
        if kind == "drop_after":  # the commit is not sent again: the branch shows it landed
            assert "the commit had landed" in result.stderr and outcomes.count("200") == 1
        else:
            assert "retry" in result.stderr.lower(), result.stderr
        assert published(hub, RMS_REPO, "v1") == local_tree(kernel)
        # Exactly one commit of the upload on the branch and one README commit on main: a lost
        # answer never makes the commit twice.
        assert len(hub.history(RMS_REPO, "v1")) == 2 and len(hub.history(RMS_REPO, "main")) == 2


def test_failed_first_upload_leaves_no_commit_and_no_branch(kernel, tmp_path):
    with hub_server() as hub:
        hub.add_fault("commit", "status", status=503, times=-1)
        result = kb_subprocess("upload", kernel, env={**hub_environment(hub, tmp_path / "hf-home"), "KERNEL_BUILDER_HUB_RETRIES": "3"})
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "failed after 3 attempt(s): HTTP 503" in result.stderr and "nothing of this commit was applied" in result.stderr
        assert hub.count("commit") == 3
        repo = hub.repo(RMS_REPO)
        assert set(repo.branches) == {"main"}, "the branch created for the upload is removed again"
        assert len(hub.history(RMS_REPO, "main")) == 1


def test_failed_update_leaves_the_branch_as_it_was(kernel, tmp_path):
    with hub_server() as hub:
        env = hub_environment(hub, tmp_path / "hf-home")
        assert kb_subprocess("upload", kernel, env=env).returncode == 0
        before = hub.repo(RMS_REPO).branches["v1"]
        (kernel / "build" / "torch-cpu" / "defaults.json").write_text('{"eps": 0.5}\n')
        assert kb_subprocess("hash", kernel).returncode == 0
        hub.add_fault("commit", "drop", times=-1)
        result = kb_subprocess("upload", kernel, env={**env, "KERNEL_BUILDER_HUB_RETRIES": "2"})
        assert result.returncode == 1 and "nothing of this commit was applied" in result.stderr
        assert hub.repo(RMS_REPO).branches["v1"] == before


def test_persistent_timeout_gives_up_with_a_clear_message(kernel, tmp_path):
    with hub_server() as hub:
        hub.add_fault("create_repo", "timeout", times=-1, delay=1.5)
        result = kb_subprocess("upload", kernel, env={**hub_environment(hub, tmp_path / "hf-home"), "KERNEL_BUILDER_HUB_RETRIES": "2"})
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "creating the repository failed after 2 attempts" in result.stderr and "Timeout" in result.stderr
        assert hub.state.repos == {}


def test_failure_between_batches_says_what_landed(kernel, tmp_path, monkeypatch):
    from kernel_builder.hub.client import HubError
    from kernel_builder.hub.source import collect_source
    from kernel_builder.hub.upload import UploadOptions, upload

    with hub_server() as hub:
        use_hub(monkeypatch, hub, tmp_path / "hf-home")
        monkeypatch.setenv("KERNEL_BUILDER_HUB_RETRIES", "2")
        hub.add_fault("commit", "status", status=500, times=-1, after=1)
        with pytest.raises(HubError, match=r"1 of 3 commits landed on v1"):
            upload(collect_source(kernel), UploadOptions(max_operations=3))
        assert len(hub.history(RMS_REPO, "v1")) == 2


def test_lfs_uploads_with_faults(kernel, tmp_path):
    """Files the Hub puts in LFS go through the LFS batch API (Xet off: this server has no Xet)."""
    with hub_server(lfs_patterns=("*.json",)) as hub:
        hub.add_fault("lfs_upload", "drop")
        hub.add_fault("lfs_batch", "status", status=503)
        env = {**hub_environment(hub, tmp_path / "hf-home"), "HF_HUB_DISABLE_XET": "1"}
        result = kb_subprocess("upload", kernel, env=env)
        assert result.returncode == 0, result.stderr
        stored = hub.files(RMS_REPO, "v1")
        assert stored["build/torch-cpu/metadata.json"].lfs and not stored["build/torch-cpu/__init__.py"].lfs
        assert hub.count("lfs_upload", "PUT") >= 3 and hub.count("lfs_verify") >= 2
        assert published(hub, RMS_REPO, "v1") == local_tree(kernel)
