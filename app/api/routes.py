"""Route plans: today's rounds per vehicle, planning on demand, stops marked done."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import psycopg
from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from app import planning
from app.api.caching import cacheable
from app.api.deps import Conn, Crew, IsoDate, ServiceDep, Writer
from app.planning import StoredPlan, StoredStop

router = APIRouter(prefix="/api/v1", tags=["routes"])

KindParam = Literal["collection", "watering"]


class StopOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "plan_id": 17, "seq": 1, "device_id": "bin-marktplatz-017", "name": "Marktplatz 3",
        "municipality": "Wächtersbach", "latitude": 50.2553, "longitude": 9.2939,
        "reason": "must", "eta": "2026-05-04T06:52:00+02:00", "value_now": 86.0,
        "value_expected": 88.5, "demand_l": 106, "trip": 0, "status": "done",
        "done_at": "2026-05-04T06:58:41+02:00", "done_by": "sensor",
        "due_at": "2026-05-05T14:00:00+02:00"}]})

    plan_id: int
    seq: int = Field(description="position on the vehicle's route, from 1")
    device_id: str
    name: str | None
    municipality: str | None
    latitude: float
    longitude: float
    reason: Literal["must", "may"] = Field(
        description="must: would overflow (or dry out) before the next round; may: worth the "
                    "detour today")
    eta: dt.datetime = Field(description="expected start of service, local time with offset")
    value_now: float | None = Field(description="fill level % (bins) or soil moisture % "
                                                "(plants) when planned")
    value_expected: float | None = Field(description="the same, expected at the ETA")
    demand_l: int = Field(description="litres of litter taken on, or of water handed out")
    trip: int | None = Field(description="0-based trip of the route; the truck unloads at the "
                                         "depot before the next")
    status: Literal["planned", "done"]
    done_at: dt.datetime | None = Field(description="when it was done; with `done_times` "
                                                    "`day` the start of that day")
    done_by: Literal["crew", "sensor"] | None = Field(
        description="who confirmed it: the crew or the bin's sensor (never a person)")
    due_at: dt.datetime | None = Field(
        default=None, description="why it is on the route: when the bin would be full (or the "
        "plant dry) as forecast at planning; null: not within the forecast")

    @classmethod
    def of(cls, stop: StoredStop) -> "StopOut":
        return cls(**stop.__dict__)


class StatusCounts(BaseModel):
    planned: int
    done: int


class PlanOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 17, "day": "2026-05-04", "kind": "collection", "vehicle_id": "fzg-1",
        "vehicle_name": "Pritsche 1", "start_at": "2026-05-04T06:30:00+02:00",
        "distance_km": 61.4, "duration_min": 412, "trips": 2, "must_count": 38,
        "may_count": 25, "unserved_must": [], "baseline_distance_km": 118.2,
        "baseline_stops": 110, "feasible": True, "created_at": "2026-05-04T05:30:07+02:00",
        "counts": {"planned": 40, "done": 3}, "stops": []}]})

    id: int
    day: dt.date
    kind: KindParam
    vehicle_id: str
    vehicle_name: str
    start_at: dt.datetime = Field(description="shift start at the depot")
    distance_km: float
    duration_min: int = Field(description="depot to depot, break included")
    trips: int = Field(description="1 + unloads at the depot on the way; 0 without stops")
    must_count: int = Field(description="must-go places offered for the day (all vehicles)")
    may_count: int = Field(description="may-go places offered for the day (all vehicles)")
    unserved_must: list[str] = Field(description="must-go places the fleet could not serve")
    baseline_distance_km: float | None = Field(
        description="what the fixed schedule's round would drive today (all vehicles); "
                    "null: no fixed schedule configured")
    baseline_stops: int | None
    feasible: bool
    created_at: dt.datetime
    counts: StatusCounts
    stops: list[StopOut]

    @classmethod
    def of(cls, plan: StoredPlan) -> "PlanOut":
        done = sum(s.status == "done" for s in plan.stops)
        return cls(
            id=plan.id, day=plan.day, kind=plan.kind, vehicle_id=plan.vehicle_id,
            vehicle_name=plan.vehicle_name, start_at=plan.start_at,
            distance_km=round(plan.distance_m / 1000, 1),
            duration_min=round(plan.duration_s / 60), trips=plan.trips,
            must_count=plan.must_count, may_count=plan.may_count,
            unserved_must=plan.unserved_must,
            baseline_distance_km=(None if plan.baseline_distance_m is None
                                  else round(plan.baseline_distance_m / 1000, 1)),
            baseline_stops=plan.baseline_stops, feasible=plan.feasible,
            created_at=plan.created_at,
            counts=StatusCounts(planned=len(plan.stops) - done, done=done),
            stops=[StopOut.of(s) for s in plan.stops])


class DayRoutes(BaseModel):
    date: dt.date
    timezone: str = Field(examples=["Europe/Berlin"])
    done_times: Literal["day", "time"] = Field(
        description="`day`: a stop's `done_at` is the start of the day it was done, its time "
                    "is not kept (BAUHOF_RECORD_DONE_TIMES)")
    plans: list[PlanOut] = Field(description="one per vehicle and kind of round; empty if "
                                             "the day has not been planned")
    next_day: dt.date | None = Field(
        default=None, description="the next later day that has a plan (of `kind`, if given)")
    next_planning_at: dt.datetime | None = Field(
        default=None, description="when the service plans the next working day by itself "
                                  "(BAUHOF_PLAN_AT); null: it does not")


class PlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"date": "2026-05-04", "kind": "collection"},
        {"date": "2026-05-04", "kind": "watering", "force": True, "time_limit_s": 2}]})

    date: IsoDate | None = Field(default=None, description="default: today (local)")
    kind: KindParam = "collection"
    force: StrictBool = Field(default=False, description="replace the day's plan even if stops of "
                                                   "it are already done")
    time_limit_s: float | None = Field(default=None, gt=0, le=30,
                                       description="solver time; default from the planner "
                                                   "configuration")


class StopStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "done"}]})

    status: Literal["done", "planned"] = Field(description="planned takes a 'done' back")


def _day_routes(service, day: dt.date, plans: list[StoredPlan],
                next_day: dt.date | None = None) -> DayRoutes:
    now = dt.datetime.now(dt.timezone.utc)
    return DayRoutes(date=day, timezone=service.planning.config.timezone,
                     done_times=service.planning.done_times,
                     plans=[PlanOut.of(p) for p in plans], next_day=next_day,
                     next_planning_at=service.planning_job.next_planning(now))


def _next_day(conn, day: dt.date, kind: str | None) -> dt.date | None:
    """The next later day with a plan that has stops: where "no plan today" should point."""
    return conn.execute(
        "SELECT min(p.day) FROM route_plans p WHERE p.day > %(day)s"
        " AND (%(kind)s::text IS NULL OR p.kind = %(kind)s)"
        " AND EXISTS (SELECT 1 FROM route_stops s WHERE s.plan_id = p.id)",
        {"day": day, "kind": kind}).fetchone()[0]


# Crews' pages and dashboards poll this; an unchanged day costs a 304 (ETag of the body).
ROUTES_MAX_AGE = 5


@router.get("/routes", response_model=DayRoutes, summary="The day's route plans per vehicle",
            dependencies=[cacheable(ROUTES_MAX_AGE)],
            responses={304: {"description": "Not modified: the If-None-Match tag is current"}})
def get_routes(conn: Conn, service: ServiceDep,
               date: IsoDate | None = Query(default=None, examples=["2026-05-04"],
                                            description="default: today (local)"),
               kind: KindParam | None = Query(default=None,
                                              description="default: both kinds")) -> DayRoutes:
    p = service.planning
    day = date or p.today()
    return _day_routes(service, day, planning.load_plans(conn, day, kind, p.tz),
                       _next_day(conn, day, kind))


@router.post("/routes/plan", response_model=DayRoutes, dependencies=[Writer],
             summary="Plan a day's round now and store it (needs an API token)",
             responses={409: {"description": "stops of the day's plan are already done; "
                                             "send force: true to replace it anyway"},
                        422: {"description": "the round cannot be planned (configuration, an "
                                             "unreachable stop)"},
                        502: {"description": "the distance service (OSRM) failed"}})
def plan_now(service: ServiceDep, request: PlanRequest) -> DayRoutes:
    # A sync endpoint: FastAPI runs it in its threadpool, so the seconds of solving do not
    # block the event loop.
    p = service.planning
    day = request.date or p.today()
    try:
        plans = p.plan(day, request.kind, force=request.force,
                       time_limit_s=request.time_limit_s)
    except planning.DoneStopsError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    except planning.DistanceError as err:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(err)) from err
    except planning.PlanningError as err:
        raise HTTPException(422, str(err)) from err
    except psycopg.OperationalError as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "database unavailable") from err
    return _day_routes(service, day, plans or [])


@router.patch("/routes/{plan_id}/stops/{seq}", response_model=StopOut, dependencies=[Crew],
              summary="Mark a stop done by the crew, or take that back (needs a crew token)",
              description="A crew token (`BAUHOF_CREW_TOKENS`) or an admin token "
                          "(`BAUHOF_API_TOKENS`). `done_by` becomes `crew`: the token says "
                          "which role, never which person.",
              responses={403: {"description": "a read token, or no crew/API tokens configured"},
                         404: {"description": "no such plan or stop"}})
def set_stop(conn: Conn, service: ServiceDep, plan_id: Annotated[int, Path(ge=1)],
             seq: Annotated[int, Path(ge=1)], body: StopStatus) -> StopOut:
    now = dt.datetime.now(dt.timezone.utc)
    stop = planning.set_stop_status(conn, plan_id, seq, body.status, now, service.planning.tz,
                                    service.planning.done_times)
    if stop is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no stop {seq} in plan {plan_id}")
    return StopOut.of(stop)
