import subprocess
import sys

from unmask.cli import COMMANDS, main


def test_help_lists_every_verb(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    for verb in COMMANDS:
        assert verb in out


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys\nfrom unmask.cli import build_parser\nbuild_parser()\n"
        "heavy = [m for m in ('torch', 'mediapipe', 'cv2', 'sklearn', 'matplotlib', "
        "'timm', 'lightning') if m in sys.modules]\nprint(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_verb_prints_help_and_fails(capsys):
    assert main([]) == 2
