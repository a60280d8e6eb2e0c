"""Particles in a closed container: Brownian motion as a Metropolis–Hastings chain, noisy measurement, MSD.

The stochastic process that gives diffusion models their name, as pure tensor functions (no dependency
on the language-model code): `run_chain` moves N particles with Gaussian proposals and hard walls,
`simulate_particles` adds localisation noise and streaming statistics, and `analyse_simulation`
estimates the diffusion coefficient (Michalet 2010 correction) and tests the stationary density.
"""

from __future__ import annotations

from textdiffusion.physics.analysis import (
    DiffusionEstimate,
    MSDTable,
    ShortLagMSD,
    estimate_diffusion,
    fit_msd_line,
    metropolis_short_time_diffusion,
    time_averaged_msd,
)
from textdiffusion.physics.container import (
    Box,
    Container,
    Potential,
    Sphere,
    boltzmann_marginal,
    make_container,
)
from textdiffusion.physics.discrete import (
    DiscreteChain,
    detailed_balance_violation,
    metropolis_hastings_kernel,
    sample_discrete_chain,
    stationary_distribution,
    transition_counts,
)
from textdiffusion.physics.hard_spheres import (
    exclusion_conflicts,
    find_conflicts,
    place_without_overlap,
)
from textdiffusion.physics.mcmc import ChainResult, proposal_std, run_chain
from textdiffusion.physics.simulation import (
    ParticleAnalysis,
    ParticleSimulation,
    analyse_simulation,
    observe,
    simulate_particles,
)
from textdiffusion.physics.stationary import (
    DensityFit,
    chi_square_sf,
    chi_square_test,
    density_goodness_of_fit,
    msd_plateau_theory,
    stationary_moments,
)

__all__ = [
    "Box",
    "ChainResult",
    "Container",
    "DensityFit",
    "DiffusionEstimate",
    "DiscreteChain",
    "MSDTable",
    "ParticleAnalysis",
    "ParticleSimulation",
    "Potential",
    "ShortLagMSD",
    "Sphere",
    "analyse_simulation",
    "boltzmann_marginal",
    "chi_square_sf",
    "chi_square_test",
    "density_goodness_of_fit",
    "detailed_balance_violation",
    "estimate_diffusion",
    "exclusion_conflicts",
    "find_conflicts",
    "fit_msd_line",
    "make_container",
    "metropolis_hastings_kernel",
    "metropolis_short_time_diffusion",
    "msd_plateau_theory",
    "observe",
    "place_without_overlap",
    "proposal_std",
    "run_chain",
    "sample_discrete_chain",
    "simulate_particles",
    "stationary_distribution",
    "stationary_moments",
    "time_averaged_msd",
    "transition_counts",
]
