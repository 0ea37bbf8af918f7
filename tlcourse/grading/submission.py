"""How `tlcourse check NOTEBOOK` grades where notebook code cannot reach: the kernel only hands
over objects, the runner's own process runs the checks.

Under the runner (`TLCOURSE_SUBMIT_DIR` set), a graded cell's `tl.check("ex03", model=...)`
does not grade: it saves the objects with `torch.save` (one file per call) and keeps the
functions it was given in the kernel. The runner loads the file with `load_submission`, whose
unpickler builds only classes of torch, torchvision, numpy and tlcourse (a lambda as `forward`, a
hook written in the notebook or a class defined there cannot come along), and calls the
learner's functions in the kernel with its own inputs (`KernelFunction`), under a time limit
that it enforces from outside. So a cell that edits the checks, writes a report line or
replaces a check function changes nothing: the verdict is computed in another process.

Example:
    >>> path = save_submission("handed", "ex10", {"answers": {"q1": "a"}})  # in the kernel
    >>> exercise, objects, refused = load_submission(path, kernel=None)  # in the runner
    >>> exercise, objects, refused
    ('ex10', {'answers': {'q1': 'a'}}, {})
"""

from __future__ import annotations

import io
import json
import pickle
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

SUBMIT_ENV = "TLCOURSE_SUBMIT_DIR"  # set by the runner: graded cells save here, never grade
_FUNCTIONS: dict[tuple[int, str], Callable] = {}  # kernel side: (call number, name) -> function


def is_function(value: object) -> bool:
    """A callable that is not a model: it stays in the kernel and is called there.

    Example:
        >>> is_function(lambda x: x), is_function(nn.Linear(2, 2))
        (True, False)
    """
    return callable(value) and not isinstance(value, (nn.Module, type))


def save_submission(folder: str | Path, exercise: str, objects: dict) -> Path:
    """Kernel side: write `objects` for the runner; functions stay here, to be called later.

    Everything but functions goes into one `torch.save` file, so a model and the optimizer
    that holds its parameters keep sharing them. An object that cannot be saved is named in
    the file's sidecar JSON with the reason, and graded as refused.

    Example:
        >>> save_submission("sub", "ex10", {"answers": {"q1": "a"}})
        PosixPath('sub/0.json')
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    number = len(list(folder.glob("*.json")))
    functions = sorted(k for k, v in objects.items() if is_function(v))
    for name in functions:
        _FUNCTIONS[(number, name)] = objects[name]
    data = {k: v for k, v in objects.items() if k not in functions}
    refused = {}
    if not _saves(data):
        for name in list(data):
            problem = _saves({name: data[name]}, explain=True)
            if problem is not True:
                refused[name] = problem
                del data[name]
    torch.save(data, folder / f"{number}.pt")
    meta = {"exercise": exercise, "functions": functions, "refused": refused, "saved": list(data)}
    path = folder / f"{number}.json"
    path.write_text(json.dumps(meta), encoding="utf-8")
    return path


def _saves(data: dict, explain: bool = False) -> bool | str:
    try:
        torch.save(data, io.BytesIO())
        return True
    except Exception as error:  # a lambda, a local function or class, an open file ...
        why = (
            " (an object handed to the grader may hold only library code: no lambda, function "
            "or class written in the notebook, and no hook but tl.freeze_batchnorm's; see "
            "docs/grading.md)"
        )
        return f"{type(error).__name__}: {error}{why}" if explain else False


def call_in_kernel(number: int, name: str, inputs: str, output: str) -> None:
    """Kernel side: call the learner's function on the runner's inputs; save (args, result).

    The result and the arguments go back in one file, so an optimizer the function built over
    a model it was given still points at that model's parameters.

    Example:
        >>> choose = lambda labels, probabilities: 0.5  # the learner's function
        >>> path = save_submission("called", "ex09", {"choose_threshold": choose})  # 0.json
        >>> torch.save(([0, 1], [0.2, 0.9]), "in.pt")  # the runner's arguments
        >>> call_in_kernel(0, "choose_threshold", "in.pt", "out.pt")  # what the runner sends
        >>> restricted_load("out.pt")  # ("ok", (arguments, result))
        ('ok', (([0, 1], [0.2, 0.9]), 0.5))
    """
    args = restricted_load(inputs)  # the runner's own file, read as strictly as the other way
    try:
        result = ("ok", (args, _FUNCTIONS[(number, name)](*args)))
    except NotImplementedError as error:
        result = ("not attempted", str(error) or f"{name}() is not written yet")
    except Exception as error:
        result = ("error", f"{name}() raised {type(error).__name__}: {error}")
    try:
        torch.save(result, output)
    except Exception as error:
        torch.save(("error", f"{name}() returned what cannot be graded: {error}"), output)


# ---------------------------------------------------------------------------- runner side
_SAFE_BUILTINS = {
    "set", "frozenset", "list", "dict", "tuple", "slice", "int", "float", "complex", "bool",
    "str", "bytes", "bytearray", "range", "object",
}  # fmt: skip
_SAFE_OTHER = {
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("collections", "deque"),
    ("functools", "partial"),
    ("copyreg", "_reconstructor"),
    ("_codecs", "encode"),
    ("tlcourse.freeze", "_keep_eval"),  # tl.freeze_batchnorm's hook
}


@lru_cache(maxsize=1)
def _safe_bases() -> tuple[type, ...]:
    from torch.utils.data import Dataset, Sampler

    return (
        nn.Module,
        torch.Tensor,
        torch.optim.Optimizer,
        torch.optim.lr_scheduler.LRScheduler,
        Sampler,
        Dataset,
        torch.Generator,
        torch.Size,
        torch.storage.UntypedStorage,
        torch.storage.TypedStorage,
    )


def allowed(module: str, name: str, found: object) -> bool:
    """Whether the unpickler may build `module.name` (`found`): library code only, never the
    notebook's (`__main__`), never a function that could do more than rebuild a tensor.

    Example:
        >>> allowed("torch.nn.modules.linear", "Linear", nn.Linear), allowed("os", "system", print)
        (True, False)
    """
    top = module.split(".")[0]
    if top == "builtins":
        return name in _SAFE_BUILTINS
    if (module, name) in _SAFE_OTHER:
        return True
    if top == "numpy":
        return isinstance(found, type) or name in ("_reconstruct", "scalar", "_frombuffer")
    if top not in ("torch", "torchvision", "tlcourse"):
        return False
    if isinstance(found, (torch.dtype, torch.device, torch.layout, torch.memory_format)):
        return True
    if isinstance(found, type):
        return top == "tlcourse" or issubclass(found, _safe_bases()) or found in _torch_allowed()
    if top == "torch" and (name.startswith("_rebuild") or module == "torch.nn.functional"):
        return True
    return found in _torch_allowed()


@lru_cache(maxsize=1)
def _torch_allowed() -> list:
    from torch import _weights_only_unpickler

    return list(_weights_only_unpickler._get_allowed_globals().values())


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        import _compat_pickle  # protocol 2 names builtins "__builtin__", as Python 2 did

        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            found = super().find_class(module, name)
        except Exception:
            found = None
        if found is None or not allowed(module, name, found):
            where = "your notebook" if module == "__main__" else module
            raise pickle.UnpicklingError(
                f"{module}.{name} (defined in {where}) is not code of torch, torchvision or "
                "tlcourse; the runner grades only those (write models with torch.nn layers, "
                "no functions assigned to a model, no hooks)"
            )
        return found


class _RestrictedPickle:
    """A `pickle_module` for `torch.load`: only `allowed` globals."""

    Unpickler = _Unpickler
    __name__ = "tlcourse.grading.submission"

    @staticmethod
    def load(file, **kwargs):
        return _Unpickler(file, **kwargs).load()


def restricted_load(path: str | Path) -> object:
    """`torch.load` that builds only library classes (see `allowed`), onto the CPU.

    Example:
        >>> path = save_submission("loaded", "ex10", {"answers": {"q1": "a"}})
        >>> restricted_load("loaded/0.pt")["answers"]
        {'q1': 'a'}
    """
    return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickle)


class KernelFunction:
    """A learner's function that stays in the notebook's kernel: calling it sends the runner's
    arguments there, runs it under the runner's time limit and loads the result back.

    Example (needs the notebook's running Jupyter kernel, so not run as a doctest):
        >>> choose = KernelFunction(kernel, 0, "choose_threshold")  # doctest: +SKIP
        >>> choose(labels, probabilities)  # runs in the kernel, graded here  # doctest: +SKIP
        0.41
    """

    def __init__(self, kernel: Kernel, number: int, name: str):
        self.kernel, self.number, self.__name__ = kernel, number, name

    def __call__(self, *args):
        from tlcourse.grading.registry import NotAttempted, NotYet

        with tempfile.TemporaryDirectory() as folder:
            inputs, output = Path(folder) / "in.pt", Path(folder) / "out.pt"
            torch.save(args, inputs)
            code = (
                "import tlcourse.grading.submission as _tl_submission\n"
                f"_tl_submission.call_in_kernel({self.number}, {self.__name__!r}, "
                f"{str(inputs)!r}, {str(output)!r})"
            )
            self.kernel.run(code, self.__name__)
            if not output.exists():
                raise NotYet(f"{self.__name__}() returned nothing to the grader")
            try:
                status, value = restricted_load(output)
            except pickle.UnpicklingError as error:
                raise NotYet(f"{self.__name__}() returned {error}") from None
        if status == "not attempted":
            raise NotAttempted(value)
        if status != "ok":
            raise NotYet(value)
        copies, result = value
        return _reattach(result, copies, args)


def _reattach(result: object, copies: tuple, originals: tuple) -> object:
    """Optimizers in `result` built over the kernel's copies of model arguments get the
    runner's own parameters back (same names), so checks can compare them with the model."""
    mapping = {}
    for copy, original in zip(copies, originals):
        if isinstance(copy, nn.Module) and isinstance(original, nn.Module):
            mine = dict(original.named_parameters())
            for name, param in copy.named_parameters():
                if name in mine and mine[name].shape == param.shape:
                    mapping[id(param)] = mine[name]
    if isinstance(result, torch.optim.Optimizer) and mapping:
        for group in result.param_groups:
            group["params"] = [mapping.get(id(p), p) for p in group["params"]]
    return result


class Kernel:
    """The runner's handle on the notebook's live kernel: run code with a hard time limit.

    After a timeout the kernel is left alone (it may be stuck in the learner's code) and every
    later call fails at once, so `except BaseException` in the notebook cannot hold the grader.

    Example (needs a running Jupyter kernel, so not run as a doctest):
        >>> Kernel(client, notebook, seconds=120).run("x = 1", "setup")  # doctest: +SKIP
    """

    def __init__(self, client, notebook, seconds: float):
        self.client, self.notebook, self.seconds = client, notebook, seconds
        self.stuck: str | None = None
        client.log.setLevel("CRITICAL")  # a timeout is reported as a ❌, not a log line

    def run(self, code: str, what: str) -> None:
        import nbformat
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        from tlcourse.grading.registry import CheckTimeout, NotYet

        if self.stuck:
            raise NotYet(f"not run: {self.stuck}")
        cell = nbformat.v4.new_code_cell(code)
        self.notebook.cells.append(cell)  # nbclient writes the executed cell back by index
        self.client.timeout = max(int(self.seconds), 1)
        try:
            self.client.execute_cell(cell, len(self.notebook.cells) - 1, store_history=False)
        except CellTimeoutError:
            self.stuck = f"{what}() ran past the {self.seconds:g} s limit"
            raise CheckTimeout(self.seconds) from None
        except DeadKernelError:
            self.stuck = f"the kernel died while {what}() ran"
            raise NotYet(self.stuck) from None
        finally:
            self.notebook.cells.pop()
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        if errors:
            raise NotYet(f"{what}() could not be called: {errors[0]['ename']}: "
                         f"{errors[0]['evalue']}")  # fmt: skip


def load_submission(meta_path: Path, kernel: Kernel | None) -> tuple[str, dict, dict[str, str]]:
    """Runner side: (exercise, objects, refused) of one graded call saved by the kernel.

    `refused` maps an object's name to why it could not be loaded (it is graded as missing
    with that reason); functions become `KernelFunction`s (or are refused without a kernel).

    Example:
        >>> answer = {"threshold": 0.5, "choose": lambda labels, probabilities: 0.5}
        >>> path = save_submission("with_function", "ex09", answer)
        >>> exercise, objects, refused = load_submission(path, kernel=None)
        >>> exercise, objects, refused
        ('ex09', {'threshold': 0.5}, {'choose': 'a function, and no kernel to call it in'})
    """
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    number = int(meta_path.stem)
    refused = {k: f"could not be handed to the grader ({v})" for k, v in meta["refused"].items()}
    objects: dict = {}
    try:
        objects = restricted_load(meta_path.with_suffix(".pt"))
    except pickle.UnpicklingError as error:
        for name in meta["saved"]:
            refused[name] = f"refused: {error}"
    _after_hook_ids(objects)
    for name in meta["functions"]:
        if kernel is None:
            refused[name] = "a function, and no kernel to call it in"
        else:
            objects[name] = KernelFunction(kernel, number, name)
    return meta["exercise"], objects, refused


def _after_hook_ids(objects: dict) -> None:
    """Hooks keep the ids the kernel gave them, and ids count per process: move this process's
    counter past them, or a hook a check adds would replace one of the model's (same key)."""
    from torch.utils.hooks import RemovableHandle

    keys = [
        key
        for value in objects.values()
        if isinstance(value, nn.Module)
        for module in value.modules()
        for hooks in vars(module).values()
        if isinstance(hooks, dict) and hooks is not module._modules
        for key in hooks
        if isinstance(key, int)
    ]
    RemovableHandle.next_id = max([RemovableHandle.next_id, *(k + 1 for k in keys)])
