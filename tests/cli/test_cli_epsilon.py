"""`fedaudit epsilon` prints every accountant's epsilon; bad values exit 2."""

import re

import pytest

from cli_run import run



def test_prints_each_accountant(capsys):
    code, out, _ = run(["epsilon", "--noise-multiplier", "1.0", "--sample-rate", "0.01", "--steps", "100"], capsys)
    assert code == 0
    values = dict(re.findall(r"^\s+(\S+)\s+epsilon = ([0-9.e+-]+)$", out, flags=re.M))
    assert set(values) == {"pld", "rdp", "opacus-rdp", "opacus-prv"}
    assert float(values["pld"]) <= float(values["rdp"])


def test_replace_one_marks_unsupported_accountants(capsys):
    code, out, _ = run(["epsilon", "--noise-multiplier", "3", "--neighbouring", "replace-one"], capsys)
    assert code == 0 and out.count("n/a") == 3 and re.search(r"pld\s+epsilon = [0-9.]+", out)


@pytest.mark.parametrize(
    "args, needle",
    [(["--noise-multiplier", "-1"], "-1"), (["--noise-multiplier", "1", "--sample-rate", "1.5"], "1.5"),
     (["--noise-multiplier", "1", "--steps", "0"], "steps"), (["--noise-multiplier", "1", "--delta", "2"], "delta")],
)
def test_bad_values(capsys, args, needle):
    code, _, err = run(["epsilon", *args], capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
