"""Publishing to the Hugging Face Hub.

- card.py: `fill-card`, the README shown on the Hub, from the CARD.md template and the sources;
- source.py: what an upload publishes, read and checked on disk (no network);
- plan.py: adds, deletes and commits as pure data, the dry-run report, the post-upload check;
- client.py: the `HfApi` for HF_ENDPOINT, timeouts, retries and error messages;
- upload.py: carries out a plan through `HfApi` and verifies the result;
- progress.py: upload progress; publish.py: what the `upload`/`build-and-upload` commands run.
"""
