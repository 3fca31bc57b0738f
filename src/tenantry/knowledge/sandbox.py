"""Extraction and chunking in a process of their own, one per document, under hard limits.

A hostile upload (a 15 KB PDF that inflates to megabytes of drawing operators, a file of NULs)
costs that process, never the worker's event loop: the child runs under an address-space and a
CPU limit (`setrlimit`), is killed when it passes the wall-clock limit, and dies with its parent.
The parent sees a result or a plain reason, never a traceback.

Protocol: the parent writes one JSON line (the job) and then the raw bytes on the child's stdin;
the child answers one JSON object on stdout: `{"text", "chunks"}` or `{"error"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import sys
import traceback
from dataclasses import asdict
from typing import TYPE_CHECKING

import structlog

from tenantry.knowledge.extract import (
    ExtractionLimits,
    Prepared,
    UnreadableDocument,
    prepare,
)

if TYPE_CHECKING:  # the child imports this module: it stays light
    from tenantry.settings import Settings

log = structlog.get_logger("tenantry.knowledge.sandbox")
PR_SET_PDEATHSIG = 1


class Extractor:
    """Runs `prepare` in a child process; at most `concurrency` children at once."""

    def __init__(self, settings: Settings, *, concurrency: int | None = None) -> None:
        self.timeout = settings.extract_timeout_seconds
        self.memory_mb = settings.extract_memory_mb
        self.limits = ExtractionLimits(
            max_pages=settings.extract_max_pages,
            max_inflation=settings.extract_max_inflation,
            max_chunks=settings.max_chunks_per_document,
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
        )
        self._slots = asyncio.Semaphore(concurrency or os.cpu_count() or 1)

    async def prepare(self, content: bytes, source_type: str, *, title: str) -> Prepared:
        job = {
            "source_type": source_type,
            "title": title,
            "limits": asdict(self.limits),
            "memory_mb": self.memory_mb,
            "cpu_seconds": int(self.timeout) + 1,
        }
        async with self._slots:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tenantry.knowledge.sandbox",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=_child_environment(),
            )
            try:
                out, err = await asyncio.wait_for(
                    proc.communicate(json.dumps(job).encode() + b"\n" + content), self.timeout
                )
            except TimeoutError:
                raise UnreadableDocument(
                    f"reading the document took longer than {self.timeout:g} seconds"
                ) from None
            finally:
                if proc.returncode is None:  # timed out or cancelled: the child goes too
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
        return self._result(proc.returncode, out, err)

    def _result(self, returncode: int, out: bytes, err: bytes) -> Prepared:
        try:
            answer = json.loads(out) if returncode == 0 else None
        except ValueError:
            answer = None
        if answer is None:
            log.warning(
                "document extraction process failed",
                returncode=returncode,
                stderr=err.decode(errors="replace")[-2000:],
            )
            raise UnreadableDocument(
                "reading the document was stopped: it needed more than "
                f"{self.memory_mb} MB of memory or {self.timeout:g} seconds"
            )
        if "error" in answer:
            raise UnreadableDocument(answer["error"])
        return Prepared(answer["text"], answer["chunks"])


def _child_environment() -> dict[str, str]:
    """Only what Python needs to start: the child never sees the platform's secrets."""
    keep = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TMPDIR")
    return {k: os.environ[k] for k in keep if k in os.environ} | {"PYTHONUNBUFFERED": "1"}


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the worker that started it dies."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _limit(memory_mb: int, cpu_seconds: int) -> None:
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))


def main() -> None:
    _die_with_parent()
    job = json.loads(sys.stdin.buffer.readline())
    _limit(job["memory_mb"], job["cpu_seconds"])
    try:
        content = sys.stdin.buffer.read()
        prepared = prepare(
            content,
            job["source_type"],
            title=job["title"],
            limits=ExtractionLimits(**job["limits"]),
        )
        answer: dict = {"text": prepared.text, "chunks": prepared.chunks}
    except UnreadableDocument as error:
        answer = {"error": str(error)}
    except MemoryError:
        answer = {"error": f"reading the document needed more than {job['memory_mb']} MB of memory"}
    except RecursionError:
        answer = {"error": "the document is nested too deeply to be read"}
    except Exception:  # a bug of ours or a library's: the worker's log gets the traceback
        traceback.print_exc()
        answer = {"error": "the document could not be read"}
    sys.stdout.buffer.write(json.dumps(answer).encode())


if __name__ == "__main__":
    main()
