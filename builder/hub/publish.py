"""The `upload` and `build-and-upload` commands: collect, plan or upload, report."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import CheckError, UsageError
from .plan import dry_run_report, format_dry_run, format_size
from .client import hub_endpoint
from .progress import UploadProgress
from .record import record_key, remember_upload, withdrawn_variants
from .source import collect_source
from .upload import UploadOptions, upload

log = logging.getLogger("kernel_builder")


@dataclass
class PublishSettings:
    repo_id: str | None = None
    branch: str | None = None
    private: bool = False
    repo_type: str = "kernel"
    create_pr: bool = False
    prune: bool = False
    dry_run: bool = False
    output_json: Path | None = None
    quiet: bool = False


def _write_json(path: Path, report: dict) -> None:
    try:
        path.write_text(json.dumps(report, indent=2) + "\n")
    except OSError as exc:
        raise UsageError(f"--output-json {path}: cannot write it: {exc.strerror}") from None


def publish(kernel_dir: Path, settings: PublishSettings, *, only: set[str] | None = None, echo: Callable[[str], None] = print) -> dict:
    """Upload the built variants of KERNEL_DIR (or print the plan with dry_run); returns the report."""
    source = collect_source(kernel_dir, repo_id=settings.repo_id, branch=settings.branch, only=only)
    # Variants this folder uploaded to the branch before and no longer holds (hub/record.py).
    key = record_key(hub_endpoint(), settings.repo_type, source.repo_id, source.branch)
    if source.base is not None:
        source = dataclasses.replace(source, withdrawn=withdrawn_variants(source.base, key, set(source.present)))
    if settings.dry_run:
        for warning in source.warnings:
            log.warning(warning)
        report = dry_run_report(source, repo_type=settings.repo_type, prune=settings.prune)
        echo(format_dry_run(report))
    else:
        options = UploadOptions(repo_type=settings.repo_type, private=settings.private, create_pr=settings.create_pr, prune=settings.prune)
        result = upload(source, options, UploadProgress(quiet=settings.quiet))
        if result.status != "pull_request_created" and source.base is not None:
            try:
                remember_upload(source.base, key, set(source.variants), source.withdrawn)
            except OSError as exc:  # the upload itself is done; only the record is missing
                log.warning("could not record this upload in %s (%s): a variant removed later is not deleted on the Hub "
                            "without --prune", source.base / ".kernel-builder", exc.strerror or exc)
        report = result.to_json()
        if result.status == "no_changes":
            echo(f"no changes: {result.repo_id}@{result.branch} already holds this upload ({result.url})")
        else:
            echo(f"{len(result.plan.adds) + bool(result.plan.readme)} files added ({format_size(result.plan.upload_bytes)}), "
                 f"{len(result.plan.deletes)} deleted, {len(result.plan.unchanged)} unchanged, in {len(result.commits)} commit(s)")
            for url in result.pull_requests:
                echo(f"pull request: {url}")
            echo(f"uploaded: {result.url}" if not result.pull_requests else f"branch: {result.url}")
    if settings.output_json is not None:
        _write_json(settings.output_json, report)
    return report


def build_variants(kernel_dir: Path, variant: str | None, python: Path | None, quiet: bool):
    """Build the kernel with the build pipeline (the one place `build-and-upload` calls it)."""
    from ..build import BuildOptions, run_build
    from ..progress import Reporter
    from ..variants import Selection

    options = BuildOptions(selection=Selection(names=(variant,) if variant else ()), python=python)
    return run_build(kernel_dir, options, Reporter(quiet=quiet))


def build_and_publish(kernel_dir: Path, settings: PublishSettings, *, variant: str | None = None, python: Path | None = None,
                      echo: Callable[[str], None] = print) -> dict:
    """Build, fill the card, then upload exactly the variants this build produced."""
    from .card import fill_card

    report = build_variants(kernel_dir, variant, python, settings.quiet)
    failed = [r for r in report.results if r.status not in ("built", "up-to-date")]
    if failed:
        raise CheckError("nothing was uploaded: " + "; ".join(f"{r.variant} failed: {r.error}" for r in failed))
    built = {r.variant for r in report.results}
    if not built:
        raise UsageError(f"{kernel_dir}: the build produced no variant to upload")
    for result in report.results:
        echo(f"{'built' if result.status == 'built' else 'up to date'} {result.path}" + (f" ({result.seconds:.0f} s)" if result.status == "built" else ""))
    card = fill_card(kernel_dir, repo_id=settings.repo_id)
    echo(f"wrote {card}")
    return publish(kernel_dir, settings, only=built, echo=echo)
