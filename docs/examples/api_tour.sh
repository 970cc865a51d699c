#!/usr/bin/env bash
# A tour of the HTTP API with curl, against a running `aiwp serve` (default http://127.0.0.1:8080).
# Run: bash docs/examples/api_tour.sh   (the test suite runs it against a server of its own)
set -euo pipefail
API=${API_URL:-http://127.0.0.1:8080}

# 1. A token from the embedded local issuer (with an OIDC issuer configured, get one from it instead).
TOKEN=$(aiwp token issue --role admin --tenant demo)
AUTH="Authorization: Bearer $TOKEN"

# 2. Write: register an agent. 201 with the id, the version and the position of the event.
AGENT=$(curl -sS -X POST "$API/v1/agents" -H "$AUTH" -H 'Content-Type: application/json' \
  -H 'Idempotency-Key: tour-agent-1' \
  -d '{"name": "support-writer", "provider": "scripted", "model": "scripted-1", "system_prompt": "Be brief."}')
echo "created: $AGENT"
AGENT_ID=$(echo "$AGENT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
POSITION=$(echo "$AGENT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["position"])')

# 3. Read your write: wait (at most 5 s) until the read model has reached that position.
curl -sS "$API/v1/agents/$AGENT_ID" -H "$AUTH" -H "X-Consistency-Position: $POSITION"; echo

# 4. Change it, saying which version you read (If-Match); a stale version answers 412.
curl -sS -X PUT "$API/v1/agents/$AGENT_ID" -H "$AUTH" -H 'Content-Type: application/json' -H 'If-Match: "1"' \
  -d '{"provider": "scripted", "model": "scripted-2"}'; echo

# 5. A workflow template, and an instance of it started through the BFF by the template's name.
TEMPLATE=$(curl -sS -X POST "$API/v1/workflow-templates" -H "$AUTH" -H 'Content-Type: application/json' \
  -d '{"name": "triage", "definition": {"inputs": ["ticket"], "steps": [
        {"id": "draft", "kind": "agent",
         "params": {"agent": "support-writer", "prompt": "Reply to: {{ inputs.ticket }}"}},
        {"id": "send", "kind": "notify", "needs": ["draft"],
         "params": {"channel": "email", "recipient": "ada@example.com", "template": "{{ outputs.draft }}"}}]}}')
echo "template: $TEMPLATE"
POSITION=$(echo "$TEMPLATE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["position"])')
# The BFF finds the template by name in its read model: the position makes it wait until it is there.
INSTANCE=$(curl -sS -X POST "$API/api/v1/workflows/execute" -H "$AUTH" -H 'Content-Type: application/json' \
  -H "X-Consistency-Position: $POSITION" -d '{"template": "triage", "inputs": {"ticket": "I was charged twice"}}')
echo "started: $INSTANCE"
INSTANCE_ID=$(echo "$INSTANCE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
POSITION=$(echo "$INSTANCE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["position"])')

# 6. The complete view of the instance, and the dashboard.
curl -sS "$API/api/v1/workflows/$INSTANCE_ID/complete" -H "$AUTH" -H "X-Consistency-Position: $POSITION"; echo
curl -sS "$API/api/v1/dashboard" -H "$AUTH"; echo

# 7. Errors are problem details: an unknown field answers 400, a bad token 401.
curl -sS -X POST "$API/v1/agents" -H "$AUTH" -H 'Content-Type: application/json' \
  -d '{"name": "x", "provider": "scripted", "model": "m", "tenant_id": "someone-else"}'; echo
curl -sS "$API/v1/agents" -H 'Authorization: Bearer not-a-token'; echo

# 8. An admin sets the tenant's budget (tokens and cost per UTC day and month); everyone may read it with its use.
BUDGET=$(curl -sS -X PUT "$API/v1/budget" -H "$AUTH" -H 'Content-Type: application/json' \
  -d '{"tokens_per_day": 100000, "cost_per_month": "25.00"}')
echo "budget: $BUDGET"
POSITION=$(echo "$BUDGET" | python3 -c 'import json,sys; print(json.load(sys.stdin)["position"])')
curl -sS "$API/v1/budget" -H "$AUTH" -H "X-Consistency-Position: $POSITION"; echo
