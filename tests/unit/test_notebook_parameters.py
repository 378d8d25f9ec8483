"""Every notebook parameter, given an invalid value, stops the notebook at once with a one-line ConfigError."""

from pathlib import Path

import papermill as pm
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
INVALID_BY_TYPE = {"int": -5, "float": -1.0, "str": 5, "bool": "yes", "list": [0]}
EXCEPTIONS = {"data_dir": 5, "profile": "bogus", "critic": "bogus", "softmax": "bogus", "held_out": [10],
              "seeds": [-1], "generator_seeds": [-1]}


def _cases():
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        for name, spec in pm.inspect_notebook(str(notebook)).items():
            value = EXCEPTIONS.get(name, INVALID_BY_TYPE[spec["inferred_type_name"].split(" ")[0]])
            yield pytest.param(notebook, name, value, id=f"{notebook.stem}-{name}")


@pytest.mark.parametrize(("notebook", "name", "value"), list(_cases()))
def test_invalid_parameter_gives_one_line_config_error(notebook, name, value, tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(str(notebook), str(tmp_path / "out.ipynb"), parameters={"profile": "smoke", name: value},
                            progress_bar=False, cwd=str(tmp_path))
    assert info.value.ename == "ConfigError", info.value.evalue
    assert info.value.evalue.startswith(f"{name}={value!r} is not allowed"), info.value.evalue
    assert "\n" not in info.value.evalue
