//! An organizer's webhook endpoints (SPEC §16): made, listed, read, changed
//! and removed by their owner alone. Where one may point is
//! `webhook::Destination`'s rule: checked here, after DNS, when the URL is
//! given, and again before every delivery.

use entity::prelude::*;
use inventory::webhooks::Kind;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;
use webhook::{Destination, DestinationRules, Secret};

use super::{Error, Services, ValidationErrors, begin_write, now};

/// Endpoints per organizer, and events per endpoint.
pub const MAX_ENDPOINTS: u64 = 20;
pub const MAX_EVENTS: usize = 100;

/// An endpoint as asked for, its fields checked (its URL's name not yet
/// resolved: that is [`create`]'s and [`change`]'s, as it needs the network).
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    url: String,
    types: Vec<&'static str>,
    event_ids: Vec<Uuid>,
}

/// What an owner may change; `None` leaves it as it is. No events: all of them.
#[derive(Debug, Clone, Default)]
pub struct EndpointChanges {
    url: Option<String>,
    types: Option<Vec<&'static str>>,
    event_ids: Option<Vec<Uuid>>,
    enabled: Option<bool>,
}

/// An endpoint and the events it listens to (none: all of its organizer's).
#[derive(Debug, Clone)]
pub struct EndpointDetails {
    pub endpoint: WebhookEndpointModel,
    pub event_ids: Vec<Uuid>,
}

impl EndpointDetails {
    pub fn types(&self) -> Vec<String> {
        self.endpoint.types.split(',').map(str::to_owned).collect()
    }
}

/// The message types an endpoint can take (SPEC §16), as the API names them.
fn every_type() -> String {
    Kind::ALL.map(Kind::name).join(", ")
}

fn parse_types(errors: &mut ValidationErrors, types: &[String]) -> Vec<&'static str> {
    let mut known: Vec<&'static str> = Vec::new();
    for name in types {
        match Kind::named(name).map(Kind::name) {
            Some(t) if !known.contains(&t) => known.push(t),
            Some(_) => {}
            None => {
                errors.add("events", format!("each must be one of {}", every_type()));
                return Vec::new();
            }
        }
    }
    if known.is_empty() {
        errors.add("events", format!("name at least one of {}", every_type()));
    }
    known
}

fn check_event_ids(errors: &mut ValidationErrors, ids: &[Uuid]) {
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    if ids.len() > MAX_EVENTS || distinct.len() != ids.len() {
        errors.add("event_ids", format!("up to {MAX_EVENTS} distinct events"));
    }
}

fn check_url(errors: &mut ValidationErrors, url: &str, rules: DestinationRules) {
    if let Err(refused) = Destination::parse(url, rules) {
        errors.add("url", refused.to_string());
    }
}

impl NewEndpoint {
    pub fn parse(
        url: String,
        types: Vec<String>,
        event_ids: Vec<Uuid>,
        rules: DestinationRules,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        check_url(&mut errors, &url, rules);
        let types = parse_types(&mut errors, &types);
        check_event_ids(&mut errors, &event_ids);
        if errors.is_empty() {
            Ok(Self {
                url,
                types,
                event_ids,
            })
        } else {
            Err(errors)
        }
    }
}

impl EndpointChanges {
    pub fn parse(
        url: Option<String>,
        types: Option<Vec<String>>,
        event_ids: Option<Vec<Uuid>>,
        enabled: Option<bool>,
        rules: DestinationRules,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if let Some(url) = &url {
            check_url(&mut errors, url, rules);
        }
        let types = types.map(|types| parse_types(&mut errors, &types));
        if let Some(ids) = &event_ids {
            check_event_ids(&mut errors, ids);
        }
        if errors.is_empty() {
            Ok(Self {
                url,
                types,
                event_ids,
                enabled,
            })
        } else {
            Err(errors)
        }
    }
}

/// The URL's name resolved now: every address it gives must be allowed.
async fn resolved(url: &str, rules: DestinationRules) -> Result<(), Error> {
    let refused = match Destination::parse(url, rules) {
        Ok(destination) => destination.resolve(rules).await.err(),
        Err(refused) => Some(refused),
    };
    match refused {
        None => Ok(()),
        Some(refused) => {
            let mut errors = ValidationErrors::default();
            errors.add("url", refused.to_string());
            Err(errors.into())
        }
    }
}

/// Each listed event must be the organizer's own.
async fn own_events<C: ConnectionTrait>(
    db: &C,
    organizer_id: Uuid,
    ids: &[Uuid],
) -> Result<(), Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let owned = Event::find()
        .filter(EventColumn::Id.is_in(ids.iter().copied()))
        .filter(EventColumn::OrganizerId.eq(organizer_id))
        .count(db)
        .await?;
    if owned == ids.len() as u64 {
        Ok(())
    } else {
        let mut errors = ValidationErrors::default();
        errors.add("event_ids", "each must be one of your own events");
        Err(errors.into())
    }
}

async fn listen_to<C: ConnectionTrait>(
    db: &C,
    endpoint_id: Uuid,
    event_ids: &[Uuid],
) -> Result<(), Error> {
    WebhookEndpointEvent::delete_many()
        .filter(WebhookEndpointEventColumn::EndpointId.eq(endpoint_id))
        .exec(db)
        .await?;
    if !event_ids.is_empty() {
        WebhookEndpointEvent::insert_many(event_ids.iter().map(|event_id| {
            WebhookEndpointEventActiveModel {
                endpoint_id: Set(endpoint_id),
                event_id: Set(*event_id),
            }
        }))
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

async fn events_of<C: ConnectionTrait>(
    db: &C,
    endpoint_ids: &[Uuid],
) -> Result<Vec<WebhookEndpointEventModel>, Error> {
    Ok(WebhookEndpointEvent::find()
        .filter(WebhookEndpointEventColumn::EndpointId.is_in(endpoint_ids.iter().copied()))
        .order_by_asc(WebhookEndpointEventColumn::EventId)
        .all(db)
        .await?)
}

/// A new endpoint and its secret, which is shown this once.
pub async fn create(
    services: &Services,
    organizer_id: Uuid,
    new: NewEndpoint,
) -> Result<(EndpointDetails, String), Error> {
    resolved(&new.url, services.webhook_destinations).await?;
    let txn = begin_write(&services.db).await?;
    let existing = WebhookEndpoint::find()
        .filter(WebhookEndpointColumn::OrganizerId.eq(organizer_id))
        .count(&txn)
        .await?;
    if existing >= MAX_ENDPOINTS {
        return Err(Error::Conflict(format!(
            "an organizer has at most {MAX_ENDPOINTS} webhook endpoints"
        )));
    }
    own_events(&txn, organizer_id, &new.event_ids).await?;
    let secret = Secret::generate().expose();
    let now = now();
    let endpoint = WebhookEndpointActiveModel {
        id: Set(Uuid::now_v7()),
        organizer_id: Set(organizer_id),
        url: Set(new.url),
        types: Set(new.types.join(",")),
        all_events: Set(new.event_ids.is_empty()),
        secret: Set(secret.clone()),
        enabled: Set(true),
        disabled_reason: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    listen_to(&txn, endpoint.id, &new.event_ids).await?;
    txn.commit().await?;
    Ok((
        EndpointDetails {
            endpoint,
            event_ids: new.event_ids,
        },
        secret,
    ))
}

/// The organizer's endpoints, oldest first.
pub async fn list(services: &Services, organizer_id: Uuid) -> Result<Vec<EndpointDetails>, Error> {
    let endpoints = WebhookEndpoint::find()
        .filter(WebhookEndpointColumn::OrganizerId.eq(organizer_id))
        .order_by_asc(WebhookEndpointColumn::CreatedAt)
        .order_by_asc(WebhookEndpointColumn::Id)
        .all(&services.db)
        .await?;
    let ids: Vec<Uuid> = endpoints.iter().map(|e| e.id).collect();
    let events = events_of(&services.db, &ids).await?;
    Ok(endpoints
        .into_iter()
        .map(|endpoint| EndpointDetails {
            event_ids: events
                .iter()
                .filter(|e| e.endpoint_id == endpoint.id)
                .map(|e| e.event_id)
                .collect(),
            endpoint,
        })
        .collect())
}

/// One of the organizer's endpoints; another's is not found.
async fn own_endpoint<C: ConnectionTrait>(
    db: &C,
    organizer_id: Uuid,
    id: Uuid,
) -> Result<WebhookEndpointModel, Error> {
    WebhookEndpoint::find_by_id(id)
        .filter(WebhookEndpointColumn::OrganizerId.eq(organizer_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound("webhook endpoint"))
}

pub async fn get(
    services: &Services,
    organizer_id: Uuid,
    id: Uuid,
) -> Result<EndpointDetails, Error> {
    let endpoint = own_endpoint(&services.db, organizer_id, id).await?;
    let event_ids = events_of(&services.db, &[id])
        .await?
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    Ok(EndpointDetails {
        endpoint,
        event_ids,
    })
}

pub async fn change(
    services: &Services,
    organizer_id: Uuid,
    id: Uuid,
    changes: EndpointChanges,
) -> Result<EndpointDetails, Error> {
    if let Some(url) = &changes.url {
        resolved(url, services.webhook_destinations).await?;
    }
    let txn = begin_write(&services.db).await?;
    let endpoint = own_endpoint(&txn, organizer_id, id).await?;
    let mut active: WebhookEndpointActiveModel = endpoint.into();
    if let Some(url) = changes.url {
        active.url = Set(url);
    }
    if let Some(types) = changes.types {
        active.types = Set(types.join(","));
    }
    if let Some(event_ids) = &changes.event_ids {
        own_events(&txn, organizer_id, event_ids).await?;
        listen_to(&txn, id, event_ids).await?;
        active.all_events = Set(event_ids.is_empty());
    }
    if let Some(enabled) = changes.enabled {
        active.enabled = Set(enabled);
        // Switched on again by its owner: whatever switched it off is past.
        active.disabled_reason = Set(None);
    }
    active.updated_at = Set(now());
    let endpoint = active.update(&txn).await?;
    let event_ids = events_of(&txn, &[id])
        .await?
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    txn.commit().await?;
    Ok(EndpointDetails {
        endpoint,
        event_ids,
    })
}

pub async fn remove(services: &Services, organizer_id: Uuid, id: Uuid) -> Result<(), Error> {
    let txn = begin_write(&services.db).await?;
    own_endpoint(&txn, organizer_id, id).await?;
    WebhookEndpointEvent::delete_many()
        .filter(WebhookEndpointEventColumn::EndpointId.eq(id))
        .exec(&txn)
        .await?;
    WebhookEndpoint::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}

/// The most deliveries the log shows.
pub const DELIVERIES_SHOWN: u64 = 100;

/// An endpoint's latest messages, newest first.
pub async fn deliveries(
    services: &Services,
    organizer_id: Uuid,
    id: Uuid,
) -> Result<Vec<WebhookMessageModel>, Error> {
    own_endpoint(&services.db, organizer_id, id).await?;
    Ok(WebhookMessage::find()
        .filter(WebhookMessageColumn::EndpointId.eq(id))
        .order_by_desc(WebhookMessageColumn::CreatedAt)
        .order_by_desc(WebhookMessageColumn::Id)
        .limit(DELIVERIES_SHOWN)
        .all(&services.db)
        .await?)
}
