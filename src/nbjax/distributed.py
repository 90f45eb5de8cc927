"""Several processes, one job, on JAX's own runtime (``jax.distributed``; no home-made RPC).

Every process runs the same script with the same arguments; each renders or fits its share of
the images, image i belonging to process i mod process_count:

    import nbjax.distributed as nd
    nd.initialize("10.0.0.1:5432", num_processes=4, process_id=rank)   # e.g. from Slurm
    mine, images = nd.render_share(stacked_experiments)                  # this process's images
    result = nbjax.fit.fit(exps, observations, free, distributed=True)   # joint fit, summed passes

``initialize`` wraps ``jax.distributed.initialize`` and, on CPUs, selects the gloo collectives
that cross-process reductions need there (a setting the caller asks for by calling it).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def initialize(coordinator_address: str, num_processes: int, process_id: int, **kwargs) -> None:
    """Join the job: ``coordinator_address`` "host:port" of process 0, this process's id.
    Call it first, before any JAX computation (JAX's rule for jax.distributed)."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU devices' collectives
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id, **kwargs
    )


def finish() -> None:
    """Leave the job, if this process joined one: wait at JAX's shutdown barrier for every
    process, then disconnect.  Without it a process that ends first (``os._exit``, as the CLI
    does) closes the coordinator's socket (process 0) or stops its heartbeats, and JAX aborts
    the processes still working."""
    if jax.distributed.is_initialized():
        jax.distributed.shutdown()


def my_images(n_images: int) -> np.ndarray:
    """Indices of the images this process handles: process_index, + process_count, ..."""
    return np.arange(jax.process_index(), n_images, jax.process_count())


def local_indices(n: int, distributed: bool, too_few: str = "{n} items for {count} processes") -> list[int]:
    """The items of ``n`` this process handles: all of them, or (``distributed``) every
    process_count-th from process_index; ``too_few`` (formatted with n and count) is the error
    when some process would get none."""
    from nbjax.errors import NBError

    if not distributed:
        return list(range(n))
    count, index = jax.process_count(), jax.process_index()
    if n < count:
        raise NBError(too_few.format(n=n, count=count))
    return list(range(index, n, count))


def render_share(experiments, **kwargs):
    """(indices, images) of this process's share of a stacked Experiment (``render_batch``)."""
    from nbjax.kernel import render_batch

    n = jax.tree.leaves(experiments)[0].shape[0]
    mine = my_images(n)
    share = jax.tree.map(lambda x: x[mine], experiments)
    return mine, render_batch(share, **kwargs)


def sum_over_processes(tree):
    """Sum every leaf of ``tree`` (arrays of the same shape on every process) over the processes:
    an all-reduce (XLA's, over one device of each process), so a process holds its own leaves
    and the sums, not every process's copy (a gather would hold process_count copies: 13 GB per
    process for 100 processes' 4000 x 4000 float64 blocks).  Returns NumPy arrays."""
    if jax.process_count() == 1:
        return tree
    from jax.sharding import NamedSharding, PartitionSpec

    leaves, treedef = jax.tree.flatten(tree)
    mesh = _process_mesh()
    mine = next(d for d in mesh.devices.flat if d.process_index == jax.process_index())
    spread = NamedSharding(mesh, PartitionSpec("processes"))
    stacked = [
        jax.make_array_from_single_device_arrays(
            (jax.process_count(), *np.shape(x)), spread, [jax.device_put(jnp.asarray(x)[None], mine)]
        )
        for x in leaves
    ]
    summed = _summing(NamedSharding(mesh, PartitionSpec()))(stacked)
    return jax.tree.unflatten(treedef, [np.asarray(s.addressable_data(0)) for s in summed])


def _process_mesh():
    """A one-axis mesh ("processes") of the first device of every process, in process order."""
    first = {}
    for d in sorted(jax.devices(), key=lambda d: (d.process_index, d.id)):
        first.setdefault(d.process_index, d)
    return jax.sharding.Mesh(np.array([first[k] for k in sorted(first)]), ("processes",))


@functools.cache
def _summing(replicated):
    """The compiled sum over the leading (process) axis, its result on every process."""
    return jax.jit(lambda xs: [jnp.sum(x, axis=0) for x in xs], out_shardings=replicated)
