"""Hardware: the GPU catalog (datasheet facts with sources), clusters, and cluster detection."""

from autoparallel.hardware.cluster import Cluster
from autoparallel.hardware.detect import detect_cluster
from autoparallel.hardware.gpu import GPU, get_gpu, list_gpus

__all__ = ["GPU", "Cluster", "detect_cluster", "get_gpu", "list_gpus"]
