"""Shared by the training emitters: launcher arithmetic and the precision the GPUs can run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoparallel.configs import precision_problem
from autoparallel.errors import InputError
from autoparallel.hardware.gpu import host_size, launchable_world
from autoparallel.validation import fp8_gpu_problem, job_precision

if TYPE_CHECKING:
    from autoparallel.hardware import Cluster
    from autoparallel.models.spec import ModelSpec


def gpus_per_host(cluster: Cluster) -> int:
    """GPUs of one host of `cluster`, where a launcher starts its processes: `GPUS_PER_HOST` for a
    rack-scale GPU whose node is larger, else the node (`Cluster.gpus_per_node`)."""
    return host_size(cluster.gpu.name, cluster.gpus_per_node)


def hosts_per_node(gpu_name: str, gpus_per_node: int) -> int:
    """Hosts of one node of `gpus_per_node` `gpu_name` GPUs (1 unless the GPU is rack-scale; a node
    that is not whole hosts ends with a part of one)."""
    return -(-gpus_per_node // host_size(gpu_name, gpus_per_node))


def host_span(width: int, host: int) -> tuple[int, int]:
    """(hosts, GPUs on each) of one process group of `width` GPUs on hosts of `host` GPUs: one host
    when it fits, else the fewest hosts that take the same count each (a launcher's `--nnodes` or
    `ppr:N:node` puts the same number on every host: 8 = 2 x 4, 6 = 2 x 3 on hosts of 4)."""
    if width <= host:
        return 1, width
    hosts = -(-width // host)
    while width % hosts:
        hosts += 1
    return hosts, width // hosts


def rack_hosts_note(gpu_name: str, gpus_per_node: int) -> str | None:
    """What a serving launch counted in hosts of a rack-scale GPU says about them (None: the GPU's
    hosts are its nodes). The planner's node stays the NVLink domain; the launch lines are per host."""
    host = host_size(gpu_name, gpus_per_node)
    if host == gpus_per_node:
        return None
    k = hosts_per_node(gpu_name, gpus_per_node)
    return (
        f"{gpu_name} hosts: the plan's node, one NVLink domain of {gpus_per_node} GPUs, is {k} hosts "
        f"(compute trays, each its own operating system) of {'' if gpus_per_node % host == 0 else 'up to '}"
        f"{host} GPUs, and these lines count hosts: "
        f"the i-th node's lines run on host i (the cluster's node n holds hosts {k}n .. {k}n + {k - 1}), "
        f"CUDA_VISIBLE_DEVICES counts a host's own GPUs 0-{host - 1} and every address placeholder names "
        "a host; an engine over several hosts of one node talks over its NVLink (multi-node NVLink), as "
        "planned"
    )


def replica_hosts(replicas: int, width: int, gpus_per_node: int, host: int) -> tuple[tuple[int, ...], ...]:
    """Hosts of each of `replicas` process groups of `width` GPUs on nodes (NVLink domains) of
    `gpus_per_node` in hosts of `host`, as the planner counts them (`solvers.serving.space.replicas_on`):
    a group at least a node wide on whole consecutive nodes; a narrower one at GPU offset s · width of
    its node, ⌊node / width⌋ per node, so that none straddles a node and one of several hosts takes
    whole ones (`perf.serving.sub_domain_size`; hosts numbered as `rack_hosts_note` says, node n
    holding hosts k·n .. k·n + k − 1). 1x36xGB200, four tp=8 replicas: hosts (0, 1), (2, 3), (4, 5),
    (6, 7); on 2x36 the fifth starts the second domain, hosts (9, 10), not (8, 9)."""
    k = -(-gpus_per_node // host)
    out: list[tuple[int, ...]] = []
    for r in range(replicas):
        if width >= gpus_per_node:
            nodes = -(-width // gpus_per_node)
            out.append(tuple(range(r * nodes * k, (r + 1) * nodes * k)))
            continue
        node, slot = divmod(r, gpus_per_node // width)
        first = slot * width
        out.append(tuple(node * k + h for h in range(first // host, (first + width - 1) // host + 1)))
    return tuple(out)


def idle_hosts_note(replicas: int, width: int, gpus_per_node: int, gpu_name: str) -> str | None:
    """Where replicas of several hosts each sit when a node's hosts do not divide among them (None:
    they do, or a replica is within one host or whole nodes): each stays inside one NVLink domain on
    whole hosts (`replica_hosts`), and the hosts left over in a domain stay idle."""
    host = host_size(gpu_name, gpus_per_node)
    if not host < width < gpus_per_node or gpus_per_node % width == 0:
        return None
    groups = replica_hosts(replicas, width, gpus_per_node, host)
    k = hosts_per_node(gpu_name, gpus_per_node)
    per = gpus_per_node // width
    domains = sorted({g[0] // k for g in groups})
    left = [n * k + h for n in domains for h in range(per * width // host, k)]
    shown = "; ".join(f"replica {r} on hosts {g[0]}-{g[-1]}" for r, g in enumerate(groups))
    return (
        f"each replica of {width} GPUs stays inside one NVLink domain of {gpus_per_node} GPUs on whole "
        f"hosts, {per} per domain: {shown}; {_hosts(left)} idle (the "
        f"{gpus_per_node - per * width} GPUs a domain has left hold no further replica)"
    )


def _hosts(hosts: list[int]) -> str:
    """ "host 8 stays" or "hosts 8, 17 stay"."""
    if len(hosts) == 1:
        return f"host {hosts[0]} stays"
    return f"hosts {', '.join(map(str, hosts))} stay"


def node_shape(world_size: int, cluster: Cluster) -> tuple[int, int]:
    """(hosts, processes per host) that a launcher starts for `world_size` ranks on `cluster`: whole
    hosts (`gpus_per_host`: a GB200 NVL72 rack is 18 hosts of 4 GPUs, not one of 72); inside one
    node of several hosts, ranks that do not fill whole hosts run as many on each host used.

    Raises:
        InputError: more ranks than the cluster has GPUs, or ranks over several nodes that do not fill
            whole hosts (`_partial_hosts_problem`).
    """
    if world_size > cluster.world_size:
        raise InputError(
            f"the plan needs {world_size} GPUs but cluster {cluster.spec} has {cluster.world_size}"
        )
    if not launchable_world(world_size, cluster.gpu.name, cluster.gpus_per_node):
        raise InputError(_partial_hosts_problem(world_size, cluster))
    host = gpus_per_host(cluster)
    if world_size <= host:
        return 1, world_size
    if world_size % host == 0:
        return world_size // host, host
    per_host = max(d for d in range(1, host + 1) if world_size % d == 0)  # within one node
    return world_size // per_host, per_host


def _partial_hosts_problem(world_size: int, cluster: Cluster) -> str:
    """Why ranks over several nodes that do not fill whole hosts get no launch line (2x8xH100, tp 4 x
    dp 3 = 12 GPUs). The cost model numbers the ranks node-major on whole nodes (`perf.comm.group_link`
    prices a group's link by the nodes its consecutive ranks span): 8 on the first node, 4 on the next.
    The launch lines start one process count on every host (torchrun's `--nproc-per-node`, DeepSpeed's
    hostfile `slots`, Slurm's `--ntasks-per-node`), so they cannot start 8 + 4; the same count on each
    host (2 x 6) is a placement other than the one priced: ranks 4-7, on one host as priced, are split
    over two, and every group crossing hosts has other members per node."""
    host = gpus_per_host(cluster)
    where = "nodes" if host == cluster.gpus_per_node else f"hosts ({cluster.gpu.name}: {host} GPUs per host)"
    full, rest = divmod(world_size, host)
    priced = " + ".join([str(host)] * full + [str(rest)])
    hosts, each = host_span(world_size, host)
    even = (
        f"; {hosts} x {each}, the same count on each, is another placement (ranks {each}-{host - 1} would "
        "leave the first host), not the one priced"
        if hosts * host <= cluster.world_size and each < host
        else ""
    )
    return (
        f"{world_size} GPUs do not fill whole {where} of {host}: the cost model places the ranks "
        f"node-major, {priced}, and the launch lines start one process count on every host{even}; "
        f"use a multiple of {host} GPUs or at most {host}"
    )


def effective_precision(precision: str, cluster: Cluster | None) -> str:
    """The training precision to emit: `bf16`, `fp8` or `fp16`.

    bf16 becomes fp16 (with dynamic loss scaling) on GPUs without BF16 tensor cores (V100, T4), as
    the GPU catalog's `bf16_native` says frameworks do there.

    Raises:
        InputError: an unknown precision, or fp8 on GPUs without FP8 tensor cores.
    """
    if (problem := precision_problem(precision)) is not None:
        raise InputError(problem)
    if cluster is None:
        return precision
    if precision == "fp8" and (problem := fp8_gpu_problem(cluster.gpu)) is not None:
        raise InputError(problem)
    return job_precision(precision, cluster.gpu)


def precision_note(asked: str, ran: str, cluster: Cluster) -> str | None:
    """Why the artifacts say another precision than the job asked for (None: the same): bf16 runs as
    fp16 with dynamic loss scaling on GPUs without BF16 tensor cores (`validation.job_precision`)."""
    if asked == ran:
        return None
    return (
        f"precision {asked} runs as {ran} with dynamic loss scaling: {cluster.gpu.name} has no BF16 tensor "
        "cores, so the plan is priced and written in fp16"
    )


def vision_tower_note(model: ModelSpec) -> str | None:
    """What a training plan of a multimodal model leaves out (None: a text model): the training
    memory and step time model the decoder stack alone."""
    if model.vision_params <= 0:
        return None
    return (
        f"the vision tower ({model.vision_params / 1e9:.2f}B parameters) is outside the plan: memory and "
        "step time cover the language model; freeze it, or add its weights, gradients and optimizer "
        "states to the first stage."
    )
