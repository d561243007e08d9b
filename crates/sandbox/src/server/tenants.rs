//! The tenant endpoints: the API client's own tenant, one tenant, and a tenant's children in
//! pages.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::*;

/// `GET /clients/{id}` is how a client learns its own tenant; the sandbox
/// gives its client a stable, made-up partner tenant.
pub(super) async fn client_info(
    State(shared): State<Arc<Shared>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&shared, &headers)?;
    if client_id != shared.scenario.client_id {
        return Err(ApiError::not_found("Client not found"));
    }
    Ok(axum::Json(json!({
        "id": client_id,
        "type": "api_client",
        "tenant_id": crate::client_tenant_id(&client_id),
        "enabled": true,
        "data": { "client_name": "acronis-reports sandbox" },
    }))
    .into_response())
}

pub(super) fn tenant_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, json!(1005), "Tenant not found")
}

/// `GET /tenants/{id}`: one tenant as the API client sees it. Every tenant exists (reports can
/// be created for any UUID) except those marked `unknown`, which this client cannot see: the
/// client's own tenant, the tenants of `tenant_tree`, the parents named there (partners) and
/// any other UUID (a customer under the client's tenant).
pub(super) async fn tenant_info(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&shared, &headers)?;
    let sc = &shared.scenario;
    let id = id.to_ascii_lowercase();
    if !crate::scenario::is_canonical_uuid(&id) || sc.tenant(&id).is_some_and(|t| t.unknown) {
        return Err(tenant_not_found());
    }
    let own = crate::client_tenant_id(&sc.client_id);
    let tree = &sc.tenant_tree;
    let body = if id == own {
        json!({
            "id": own, "name": "Sandbox Partner", "kind": "partner", "parent_id": null,
            "enabled": true, "pricing_mode": "production", "has_children": true, "version": 1,
        })
    } else if let Some(t) = tree.iter().find(|t| t.id.eq_ignore_ascii_case(&id)) {
        json!({
            "id": t.id, "name": t.name, "kind": t.kind, "parent_id": t.parent_id,
            "enabled": t.enabled, "pricing_mode": t.pricing_mode,
            "has_children": tree.iter().any(|c| c.parent_id.eq_ignore_ascii_case(&t.id)),
            "version": 1,
        })
    } else if tree.iter().any(|t| t.parent_id.eq_ignore_ascii_case(&id)) {
        json!({
            "id": id, "name": format!("Partner {}", &id[..8]), "kind": "partner",
            "parent_id": own, "enabled": true, "pricing_mode": "production",
            "has_children": true, "version": 1,
        })
    } else {
        json!({
            "id": id, "name": format!("Customer {}", &id[..8]), "kind": "customer",
            "parent_id": own, "enabled": true, "pricing_mode": "production",
            "has_children": false, "version": 1,
        })
    };
    Ok(axum::Json(body).into_response())
}

/// `GET /tenants/{id}/children`: child UUIDs, or whole tenant objects with
/// `include_details=true`, paged with an opaque `after` cursor as the platform's
/// generic paging does.
pub(super) async fn tenant_children(
    State(shared): State<Arc<Shared>>,
    Path(parent): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&shared, &headers)?;
    let tree = &shared.scenario.tenant_tree;
    let known = tree
        .iter()
        .any(|t| t.id.eq_ignore_ascii_case(&parent) || t.parent_id.eq_ignore_ascii_case(&parent));
    let invisible = shared.scenario.tenant(&parent).is_some_and(|t| t.unknown);
    if !known || invisible {
        return Err(tenant_not_found());
    }
    let params = parse_form(query.unwrap_or_default().as_bytes());
    let details = params.get("include_details").is_some_and(|v| v == "true");
    let page_size = params
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(usize::MAX)
        .min(shared.scenario.children_page_size)
        .max(1);
    let start = match params.get("after") {
        Some(cursor) => cursor
            .strip_prefix("cursor-")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| ApiError::bad_field("after", "invalid paging cursor".into()))?,
        None => 0,
    };
    let children: Vec<_> = tree
        .iter()
        .filter(|t| t.parent_id.eq_ignore_ascii_case(&parent))
        .collect();
    let page: Vec<Value> = children
        .iter()
        .skip(start)
        .take(page_size)
        .map(|t| {
            if details {
                json!({
                    "id": t.id, "name": t.name, "kind": t.kind, "parent_id": t.parent_id,
                    "enabled": t.enabled, "pricing_mode": t.pricing_mode,
                    "has_children": tree.iter().any(|c| c.parent_id.eq_ignore_ascii_case(&t.id)),
                    "version": 1,
                })
            } else {
                json!(t.id)
            }
        })
        .collect();
    let mut body = json!({ "items": page });
    if start + page_size < children.len() {
        body["paging"] = json!({ "cursors": { "after": format!("cursor-{}", start + page_size) } });
    }
    Ok(axum::Json(body).into_response())
}
