"""Packaging for tinygrad_llm.

The fused kernels live in the top-level folder ``kernels/`` but are installed as
``tinygrad_llm.kernels``: a top-level importable ``kernels`` would shadow the PyPI package of
that name (which HF transformers probes for), so it is mapped with ``package_dir``.
"""
from setuptools import find_packages, setup

packages = find_packages(include=["tinygrad_llm", "tinygrad_llm.*"]) + ["tinygrad_llm.kernels"]

setup(
    name="tinygrad_llm",
    version="0.1.0",
    description="A small deep-learning framework with every formula written out by hand",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=packages,
    package_dir={"tinygrad_llm.kernels": "kernels"},
    install_requires=[
        # numba 0.68 and numba-cuda need numpy < 2.5 (np.row_stack was removed in 2.5).
        "numpy>=1.24,<2.5",
        "numba>=0.59",
        # numba's np.dot inside @njit calls SciPy's BLAS: kernels/_cblas.py's fallback when
        # NumPy's own BLAS symbols are not found
        "scipy>=1.8",
        "safetensors>=0.4",
        "tqdm>=4.60",
        "matplotlib>=3.5",
        "snowballstemmer>=2.2",
    ],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6.80"],
        # GPU: CuPy's wheel and numba-cuda's NVVM/libdevice are built per CUDA major version;
        # pick the one your driver's CUDA reports (nvidia-smi, top right), see docs/GPU.md.
        # Two CuPy wheels in one environment overwrite each other's cupy/ folder.
        "gpu-cuda12": ["cupy-cuda12x>=13", "numba-cuda[cu12]>=0.30"],
        "gpu-cuda13": ["cupy-cuda13x>=14", "numba-cuda[cu13]>=0.30"],
        # data-parallel training (tinygrad_llm.distributed): mpi4py and an MPI library as a
        # wheel, so that mpiexec works without system packages (docs/DISTRIBUTED.md)
        "dist": ["mpi4py>=4", "mpich"],
        "oracles": ["torch==2.13.0", "transformers", "tokenizers", "sacrebleu", "rouge-score"],
    },
    entry_points={"console_scripts": ["tinygrad-llm=tinygrad_llm.cli:main"]},
)
