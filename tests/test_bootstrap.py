"""scripts/bootstrap.sh as a new user meets it: it says which Python it takes and what it is doing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOLS = ("bash", "dirname", "basename", "touch", "env")


def test_without_python311_bootstrap_warns_which_python_it_uses_and_says_it_installs(tmp_path: Path) -> None:
    repo = tmp_path / "clone"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "bootstrap.sh", repo / "scripts" / "bootstrap.sh")
    (repo / "requirements.txt").write_text("")  # nothing to download: only the script's own steps run
    bin_dir = tmp_path / "bin"  # a PATH with a python3 but no python3.11
    bin_dir.mkdir()
    for tool in TOOLS:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    # The system's interpreter (a pyenv build does not run from a bare PATH), named python3 only.
    system_python = shutil.which("python3.11", path="/usr/bin:/usr/local/bin") or shutil.which("python3", path="/usr/bin")
    (bin_dir / "python3").symlink_to(system_python)
    proc = subprocess.run(["bash", "scripts/bootstrap.sh"], cwd=repo, env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"warning: python3.11 not found; using {bin_dir / 'python3'}" in proc.stderr
    assert "creating .venv" in proc.stderr and "installing requirements.txt into .venv" in proc.stderr
    assert (repo / ".venv" / "bin" / "python").exists()
