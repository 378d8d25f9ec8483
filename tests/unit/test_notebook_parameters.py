"""Every notebook parameter, given an invalid value, stops the notebook at once with a one-line ConfigError.

Each parameter is checked by executing the notebook's cells in this process, in order and with the value
injected after the parameter cell as papermill injects it, until the first error (no kernel to start per
case); one parameter of each notebook goes through papermill and a real kernel, so that the two are seen to
agree."""

import json
from pathlib import Path

import matplotlib
import papermill as pm
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from nine.config import ConfigError

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
INVALID_BY_TYPE = {"int": -5, "float": -1.0, "str": 5, "bool": "yes", "list": [0]}
EXCEPTIONS = {"data_dir": 5, "profile": "bogus", "critic": "bogus", "softmax": "bogus", "held_out": [10],
              "seeds": [-1], "generator_seeds": [-1]}


def _cases():
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        for k, (name, spec) in enumerate(pm.inspect_notebook(str(notebook)).items()):
            value = EXCEPTIONS.get(name, INVALID_BY_TYPE[spec["inferred_type_name"].split(" ")[0]])
            yield pytest.param(notebook, name, value, k == 0, id=f"{notebook.stem}-{name}")


def execute_in_process(notebook: Path, parameters: dict, cwd: Path) -> None:
    """The notebook's code cells executed here, ``parameters`` set after its parameter cell."""
    matplotlib.use("Agg")
    cells = json.loads(notebook.read_text())["cells"]
    namespace = {"__name__": "__main__", "display": lambda *args, **kwargs: None}
    transform = TransformerManager().transform_cell
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        exec(compile(transform("".join(cell["source"])), str(notebook), "exec"), namespace)  # noqa: S102
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            namespace.update(parameters)


@pytest.mark.parametrize(("notebook", "name", "value", "through_papermill"), list(_cases()))
def test_invalid_parameter_gives_one_line_config_error(notebook, name, value, through_papermill, tmp_path, monkeypatch):
    parameters = {"profile": "smoke", name: value}
    if through_papermill:
        with pytest.raises(pm.PapermillExecutionError) as info:
            pm.execute_notebook(str(notebook), str(tmp_path / "out.ipynb"), parameters=parameters,
                                progress_bar=False, cwd=str(tmp_path))
        kind, message = info.value.ename, info.value.evalue
    else:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("NINE_RUNS_DIR", str(tmp_path / "runs"))
        with pytest.raises(Exception) as info:  # noqa: B017 (which one is what the test reads)
            execute_in_process(notebook, parameters, tmp_path)
        kind, message = type(info.value).__name__, str(info.value)
        assert isinstance(info.value, ConfigError), message
    assert kind == "ConfigError", message
    assert message.startswith(f"{name}={value!r} is not allowed"), message
    assert "\n" not in message


def test_the_in_process_execution_reaches_the_checks(tmp_path, monkeypatch):
    """A valid value passes the checks: the notebook goes on to the cells after them (stopped here by an
    error planted in its third code cell), so the cases above fail for the reason they name."""
    notebook = NOTEBOOKS / "01_theory.ipynb"
    cells = json.loads(notebook.read_text())
    code = [c for c in cells["cells"] if c["cell_type"] == "code"]
    code[2]["source"] = ["raise RuntimeError('reached the third cell')\n"]
    planted = tmp_path / "planted.ipynb"
    planted.write_text(json.dumps(cells))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError, match="reached the third cell"):
        execute_in_process(planted, {"profile": "smoke"}, tmp_path)
