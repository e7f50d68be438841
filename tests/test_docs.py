"""The README stays true: its Quick start, CI's command and the command-line reference."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from app.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def quick_start_commands() -> list[str]:
    section = re.search(r"^## Quick start\n(.*?)^## ", README, re.M | re.S).group(1)
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", section, re.M | re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_quick_start_has_two_commands_and_ci_runs_the_test_one():
    start, test = quick_start_commands()
    assert start.endswith("run.py")
    assert "pytest" in test
    assert test in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.append(f"{prefix}{name}")
                found.extend(subcommands(child, f"{prefix}{name} "))
    return found


def test_every_subcommand_is_in_the_readme():
    for command in subcommands(build_parser()):
        assert f"python run.py {command}" in README or command == "serve" and "[serve]" in README, command
