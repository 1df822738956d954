"""Hardware: the GPU catalog (datasheet facts with sources), clusters, and cluster detection."""

from autoparallel.hardware.cluster import Cluster, Pool, parse_prices
from autoparallel.hardware.detect import detect_cluster
from autoparallel.hardware.gpu import GPU, get_gpu, list_gpus

__all__ = ["GPU", "Cluster", "Pool", "detect_cluster", "get_gpu", "list_gpus", "parse_prices"]
