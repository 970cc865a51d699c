"""Every projection of the platform, by name."""

from __future__ import annotations

from projections import (
    agents,
    audit_events,
    budgets,
    contexts,
    executions,
    saga_compensations,
    scoring_models,
    tasks,
    token_usage,
    validation_results,
    validation_rules,
    workflow_instances,
    workflows,
)
from projections.projection import Projection

PROJECTIONS: dict[str, Projection] = {
    module.projection.name: module.projection
    for module in (
        agents,
        executions,
        contexts,
        token_usage,
        budgets,
        workflows,
        workflow_instances,
        tasks,
        saga_compensations,
        validation_rules,
        scoring_models,
        validation_results,
        audit_events,
    )
}
