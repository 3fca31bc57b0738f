"""A few rules for deploy/docker/Dockerfile that no offline tool here checks for us.

    python -m deploy.tools.dockerfile_lint deploy/docker/Dockerfile

1. every base image is pinned: a full version tag (three numbers) or a digest, never `latest`;
2. more than one stage, the last one runs as a user that is not root, set after its last RUN;
3. no compiler or build toolchain is installed in the last stage;
4. the last stage installs the wheel built by an earlier stage, has a HEALTHCHECK and a CMD;
5. no ADD of a URL, and no ENV or ARG that looks like a secret.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

COMPILERS = re.compile(
    r"\b(gcc|g\+\+|clang|cc|c\+\+|make|cmake|build-essential|musl-dev|libc6?-dev|"
    r"python3?-dev|rustc|cargo|gfortran|[a-z0-9.+-]+-dev)\b"
)
INSTALLS = re.compile(r"\b(apt-get|apt|apk|yum|dnf|microdnf)\b[^&;|]*\b(install|add)\b([^&;|]*)")
PINNED = re.compile(r"(@sha256:[0-9a-f]{64}$)|(:[^:@/]*\d+\.\d+\.\d+[^:@/]*$)")
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|TOKEN|API_KEY|PRIVATE_KEY)", re.I)
ROOT_USERS = {"root", "0", "0:0", "root:root"}


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        pending += " " + line.rstrip("\\").strip()
        if not line.endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
            pending = ""
    return out


def stages(text: str) -> list[Stage]:
    result: list[Stage] = []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            result.append(Stage(parts[0], name))
        elif result:
            result[-1].instructions.append((keyword, rest))
    return result


def lint(text: str) -> list[str]:
    found = stages(text)
    if not found:
        return ["no FROM"]
    problems = []
    names = {s.name for s in found if s.name}
    for stage in found:
        if stage.image in names:
            continue  # built from an earlier stage of this file
        if not PINNED.search(stage.image):
            problems.append(f"base image {stage.image} is not pinned to a full version or digest")
    if len(found) < 2:
        problems.append("a single stage: build tools would ship in the image")
    final = found[-1]
    users = [i for i, (k, _) in enumerate(final.instructions) if k == "USER"]
    runs = [i for i, (k, _) in enumerate(final.instructions) if k == "RUN"]
    if not users:
        problems.append("the final stage has no USER: it would run as root")
    else:
        last_user = final.instructions[users[-1]][1].strip()
        if last_user in ROOT_USERS:
            problems.append("the final stage runs as root")
        if runs and runs[-1] > users[-1]:
            problems.append("a RUN follows the final USER")
    for keyword, rest in final.instructions:
        if keyword == "RUN":
            for install in INSTALLS.finditer(rest):
                compiler = COMPILERS.search(install.group(3))
                if compiler:
                    problems.append(f"the final stage installs {compiler.group(0)}")
        if keyword == "ADD" and re.search(r"https?://", rest):
            problems.append("ADD of a URL: fetch in the builder and verify a checksum")
        if keyword in {"ENV", "ARG"} and SECRET_NAME.search(rest):
            problems.append(f"{keyword} {rest.split()[0]} looks like a secret baked into the image")
    keywords = {k for k, _ in final.instructions}
    for needed in ("HEALTHCHECK", "CMD"):
        if needed not in keywords:
            problems.append(f"the final stage has no {needed}")
    wheel_from_builder = any(
        re.search(r"from=\w+", rest) and ("wheel" in rest or ".whl" in rest)
        for k, rest in final.instructions
        if k in {"COPY", "RUN"}
    )
    if not wheel_from_builder:
        problems.append("the final stage does not install the wheel built by an earlier stage")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    problems = lint(Path(args[0]).read_text())
    for problem in problems:
        print(f"{args[0]}: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
