"""Landmark analysis with inverse probability weighting at any number of
users, from ``workbench.tables.landmark_risk_sets`` (counts per landmark,
tenure bin since it, exposure and covariate pattern) and one engine pass over
``workbench.tables.landmark_users``.

- Propensity: the logistic model of having co-created by the landmark, fitted
  on covariate-pattern counts (users at risk at the landmark = the first
  bin's ``at_risk``): the same likelihood as on users, so the same estimates.
  Numeric covariates enter as they are; coarsen a continuous one in the table.
- Weights: stabilized, per (landmark, pattern, group), as in :func:`landmark_ipw`.
- Outcome: piecewise-exponential hazards (Poisson on churns with log
  person-days as offset, one baseline per tenure bin -- per (landmark, bin)
  when pooled), weighted by the IPW, per landmark and pooled: the aggregated
  counterpart of the weighted Cox models; hazard ratios agree with them within
  about 2% (``tests/test_survival_paths.py``).
- Standard errors: the sandwich clustered by user (a user appears at several
  landmarks and in many bins; the weights make the likelihood a
  pseudo-likelihood), computed in one engine pass: each user's score is a
  cumulative sum over their bins, looked up per (landmark, pattern, group,
  last bin) -- see :mod:`workbench.tables.influence`. Weights are treated as
  known, as in the exact path.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd

from workbench.errors import ModelError, ParameterError
from workbench.models.causal.evalue import e_value
from workbench.models.causal.landmark_ipw import LandmarkIPWResult, landmark_ipw
from workbench.models.causal.propensity import OverlapWarning, ess, propensity_model, smd, weighted_quantiles
from workbench.models.inputs import as_list, design_matrix, numeric, require_columns, to_ibis, to_pandas
from workbench.models.survival import DiscreteHazardResult, landmark_data
from workbench.models.survival.discrete import fit_binned_glm
from workbench.models.survival.paths import DEFAULT_MAX_EPISODES, choose_path

GROUPS = ((1, "co-created"), (0, "not yet"))


def landmark_ipw_aggregated(risk_sets, users, *, covariates, bin_days: float = 7, treatment: str = "exposed", trim: float = 0.0,
                            rare_outcome: bool | None = None, alpha: float = 0.05) -> LandmarkIPWResult:
    """Landmark analysis with inverse probability weighting on aggregated
    landmark risk sets (module docstring). ``risk_sets``:
    ``workbench.tables.landmark_risk_sets(ds, landmarks=..., covariates=..., bin_days=...)``
    (Ibis or pandas); ``users``: ``workbench.tables.landmark_users(ds, ...)``
    with the same arguments, as an Ibis table (it stays in the engine);
    ``covariates``: the propensity model's covariates, among the table's;
    ``bin_days``: the table's. Returns the :class:`LandmarkIPWResult` of
    :func:`landmark_ipw` with ``method="aggregated"``: ``propensity`` per
    covariate pattern with its ``users``, ``curves`` the weighted
    piecewise-exponential retention."""
    from workbench.tables.influence import cluster_score_products

    where = "landmark_ipw_aggregated"
    covariates = as_list(covariates, "covariates")
    if not covariates:
        raise ParameterError(f"{where}: give the pre-landmark covariates of the propensity model, e.g. covariates=['segment'].")
    if not 0 <= trim < 0.5:
        raise ParameterError(f"{where}: trim must be in [0, 0.5), got {trim!r}")
    df = to_pandas(risk_sets, where)
    require_columns(df, ["landmark", "tenure_bin", treatment, "at_risk", "events", "exposure_days", *covariates], where,
                    "Build it with workbench.tables.landmark_risk_sets(ds, landmarks=..., covariates=...).")
    df = df.loc[numeric(df, "at_risk", where) > 0].reset_index(drop=True)
    if (numeric(df, "exposure_days", where) > numeric(df, "at_risk", where) * bin_days * (1 + 1e-9)).any():
        raise ParameterError(f"{where}: bin_days={bin_days!r} does not match the table (some cell has more person-days than "
                             "at_risk x bin_days); pass the bin_days the table was built with.")
    pattern_keys = ["landmark", *covariates]
    group_keys = [*pattern_keys, treatment]
    first = df[df["tenure_bin"] == 0]
    groups = first.groupby(group_keys, as_index=False, dropna=False)["at_risk"].sum().rename(columns={"at_risk": "users"})
    pats = groups.pivot_table(index=pattern_keys, columns=treatment, values="users", aggfunc="sum", fill_value=0)
    pats = pats.reindex(columns=[0, 1], fill_value=0).reset_index().rename(columns={0: "n0", 1: "n1"})
    parts, overlap, balance = [], [], []
    for d, p in pats.groupby("landmark", sort=True):
        p = p.reset_index(drop=True)
        n1, n0 = int(p["n1"].sum()), int(p["n0"].sum())
        if n1 == 0 or n0 == 0:
            raise ModelError(f"{where}: at landmark day {d:g} {'nobody' if n1 == 0 else 'everybody'} still at risk had co-created "
                             f"({n1 + n0:,} users), so there is no comparison group; choose a {'later' if n1 == 0 else 'earlier'} landmark.")
        here = df[df["landmark"] == d]
        for level, _word in GROUPS:
            if here.loc[here[treatment] == level, "events"].sum() == 0:
                raise ModelError(f"{where}: at landmark day {d:g} none of the {'co-creators' if level else 'others'} churned "
                                 "afterwards, so the hazard ratio cannot be estimated; choose another landmark or lengthen the "
                                 "observation window.")
        lab = f"{where} (day {d:g})"
        X, names = design_matrix(p, covariates, where=lab)
        trials = (p["n0"] + p["n1"]).to_numpy(float)
        ps = propensity_model(X, names, p["n1"].to_numpy(float), trials, covariates=covariates, treatment=treatment, where=lab)
        share = n1 / (n1 + n0)
        keep = (ps >= trim) & (ps <= 1 - trim) if trim > 0 else np.ones(len(p), dtype=bool)
        # one row per (pattern, group): the users, their propensity and weight
        rows = pd.concat([p.assign(**{treatment: 1, "users": p["n1"], "propensity": ps, "ipw": share / ps, "kept": keep}),
                          p.assign(**{treatment: 0, "users": p["n0"], "propensity": ps, "ipw": (1 - share) / (1 - ps), "kept": keep})],
                         ignore_index=True)
        rows = rows[rows["users"] > 0].reset_index(drop=True)
        Xr, _ = design_matrix(rows, covariates, where=lab) if len(names) else (np.empty((len(rows), 0)), [])
        t = rows[treatment].to_numpy()
        u, w, k = rows["users"].to_numpy(float), rows["ipw"].to_numpy(float), rows["kept"].to_numpy(bool)
        extreme = float(u[(rows["propensity"] < 0.05) | (rows["propensity"] > 0.95)].sum() / u.sum())
        for level, name in GROUPS:
            sel = t == level
            q = weighted_quantiles(rows["propensity"].to_numpy()[sel], u[sel], [0.01, 0.25, 0.5, 0.75, 0.99])
            out_ = (rows["propensity"].to_numpy()[sel] < 0.05) | (rows["propensity"].to_numpy()[sel] > 0.95)
            overlap.append({"landmark": d, "group": name, "users": int(u[sel].sum()), "ps_p01": q[0], "ps_p25": q[1], "ps_median": q[2],
                            "ps_p75": q[3], "ps_p99": q[4], "share_ps_outside_05_95": float(u[sel][out_].sum() / u[sel].sum()),
                            "trimmed": int(u[sel & ~k].sum()), "ess_weighted": ess(w[sel & k], u[sel & k]),
                            "max_weight": float(w[sel & k].max())})
        if extreme > 0.1 and trim == 0:
            warnings.warn(f"{where}: at landmark day {d:g}, {extreme:.0%} of users have a propensity below 0.05 or above 0.95; "
                          "the weighted comparison leans on few users (see overlap). Consider trim=0.05.", OverlapWarning, stacklevel=2)
        for j, name in enumerate(names):
            balance.append({"landmark": d, "covariate": name, "smd_unweighted": smd(Xr[k, j], t[k], None, u[k]),
                            "smd_weighted": smd(Xr[k, j], t[k], w[k], u[k])})
        parts.append(rows)
    prop = pd.concat(parts, ignore_index=True)
    cells = df.merge(prop[[*group_keys, "ipw", "kept"]], on=group_keys, how="left", validate="many_to_one")
    cells["ipw"] = np.where(cells["kept"].fillna(False).astype(bool), cells["ipw"].fillna(0.0), 0.0)
    cells = cells.sort_values([*group_keys, "tenure_bin"], kind="stable").reset_index(drop=True)
    ev, n, e = (cells[c].to_numpy(float) for c in ("events", "at_risk", "exposure_days"))
    x = cells[treatment].to_numpy(float)
    lm = cells["landmark"].to_numpy(float)
    bins = cells["tenure_bin"].to_numpy()
    landmarks = sorted(pats["landmark"].unique())
    multi = len(landmarks) > 1
    fits = []  # (key, weighted, mask, baseline)
    for d in landmarks:
        for weighted in (False, True):
            fits.append((float(d), weighted, lm == d, bins))
    for weighted in (False, True):
        fits.append(("pooled", weighted, np.ones(len(cells), dtype=bool),
                     pd.MultiIndex.from_arrays([lm, bins]).factorize()[0] if multi else bins))  # a baseline per (landmark, bin)
    coefs = cells[[*group_keys, "tenure_bin"]].copy()
    fitted = []
    for f, (key, weighted, mask, base) in enumerate(fits):
        wts = np.where(mask, cells["ipw"].to_numpy() if weighted else (cells["kept"].fillna(False).to_numpy(bool) * 1.0), 0.0)
        sub = mask & (wts > 0)
        fit = fit_binned_glm(ev[sub], n[sub], x[sub][:, None], np.asarray(base)[sub], link="poisson", exposure_days=e[sub],
                             weights=wts[sub], where=f"{where} ({'pooled' if key == 'pooled' else f'day {key:g}'})")
        g = np.zeros(len(cells))
        lam = np.zeros(len(cells))
        idx = np.flatnonzero(sub)[fit.keep]
        g[idx] = fit.influence[:, 0]
        lam[idx] = fit.mu
        wg = wts * g
        full = wg * lam * bin_days  # a full bin's term of the score: w g rate x bin length
        before = pd.Series(full).groupby([cells[c] for c in group_keys], sort=False, dropna=False).cumsum().to_numpy() - full
        coefs[f"a{f}"] = wg * lam
        coefs[f"b{f}"] = wg
        coefs[f"c{f}"] = before
        fitted.append((key, weighted, fit, sub))
    pr = cluster_score_products(to_ibis(users, where), coefs, [*group_keys, "tenure_bin"], outcome="churned",
                                exposure="last_days", table_fn=where).to_pandas().iloc[0]
    first_n = first.merge(prop[[*group_keys, "kept"]], on=group_keys, how="left")
    if int(pr["rows"]) != int(first["at_risk"].sum()):
        raise ParameterError(f"{where}: users ({int(pr['rows']):,} user-landmark rows) and risk_sets "
                             f"({int(first['at_risk'].sum()):,} at risk at the landmarks) do not come from the same table "
                             "arguments; build both with the same landmarks, exposure, churn, bin_days and covariates.")
    results, est_rows = {}, {}
    for f, (key, weighted, fit, sub) in enumerate(fitted):
        var = float(pr[f"m_{f}_{f}"])
        idx = pd.Index([treatment], name="covariate")
        label = (f"Landmark {'(pooled)' if key == 'pooled' else f'day {key:g}'}, {'IP-weighted' if weighted else 'unweighted'}, "
                 "piecewise-exponential on aggregated risk sets")
        results[(key, weighted)] = DiscreteHazardResult(
            label=label, link="poisson", params=pd.Series(fit.params, index=idx), cov=pd.DataFrame([[var]], index=idx, columns=idx),
            exposure=treatment, n_cells=int(fit.keep.sum()), n_bins=fit.n_baseline, n_events=float(ev[sub][fit.keep].sum()),
            n_at_risk=float(n[sub][fit.keep].sum()), dropped_bins=fit.dropped, alpha=alpha,
            se_type="robust, clustered by user (one engine pass)")
    for key in [*landmarks, "pooled"]:
        sel = np.ones(len(first_n), dtype=bool) if key == "pooled" else (first_n["landmark"].to_numpy() == key)
        kept = sel & first_n["kept"].fillna(False).to_numpy(bool)
        csel = np.ones(len(cells), dtype=bool) if key == "pooled" else (lm == key)
        csel &= cells["kept"].fillna(False).to_numpy(bool)
        u_, w_ = results[(key, False)], results[(key, True)]
        hu, lu, uu = u_.hazard_ratio()
        hw, lw, uw = w_.hazard_ratio()
        # users: at the landmark; pooled, those at the first landmark (everyone at risk later was at risk then)
        at_first = first_n["landmark"].to_numpy() == landmarks[0]
        users = first_n.loc[kept & at_first if key == "pooled" else kept, "at_risk"].sum()
        est_rows[float(key) if key != "pooled" else "pooled"] = {
            "users": int(users), "rows": int(first_n.loc[kept, "at_risk"].sum()),
            "co_creators": int(first_n.loc[kept & (first_n[treatment] == 1), "at_risk"].sum()), "events": int(ev[csel].sum()),
            "hr_unweighted": hu, "hr_unweighted_ci_low": lu, "hr_unweighted_ci_high": uu,
            "hr_weighted": hw, "hr_weighted_ci_low": lw, "hr_weighted_ci_high": uw}
    estimates = pd.DataFrame.from_dict(est_rows, orient="index")
    estimates.index.name = "landmark"
    # retention per landmark and group: the piecewise-exponential curve of the (weighted) churn rates per bin
    curves = []
    kept = cells["kept"].fillna(False).to_numpy(bool) * 1.0
    for d in landmarks:
        for level, name in GROUPS:
            sel = (lm == d) & (x == level)
            frame = {"landmark": d, "group": name}
            for col, w in (("survival", cells["ipw"].to_numpy()[sel]), ("survival_unweighted", kept[sel])):
                by = pd.DataFrame({"b": bins[sel], "we": w * ev[sel], "wd": w * e[sel]}).groupby("b")[["we", "wd"]].sum()
                rate = np.where(by["wd"] > 0, by["we"] / by["wd"].where(by["wd"] > 0, 1.0), 0.0)
                frame["time"] = np.r_[0.0, (by.index.to_numpy() + 1) * bin_days]
                frame[col] = np.r_[1.0, np.exp(-np.cumsum(rate * bin_days))]
            curves.append(pd.DataFrame(frame))
    d0 = first[first["landmark"] == landmarks[0]]
    share_churned = float(df.loc[df["landmark"] == landmarks[0], "events"].sum() / d0["at_risk"].sum())
    hr, lo, hi = results[("pooled", True)].hazard_ratio()
    ev_res = e_value(hr, ci_low=lo, ci_high=hi, rare_outcome=rare_outcome, outcome_share=share_churned)
    propensity = prop[["landmark", *covariates, treatment, "users", "propensity", "ipw"]].rename(columns={treatment: "exposed"})
    return LandmarkIPWResult(landmarks=tuple(float(d) for d in landmarks), covariates=tuple(covariates), estimates=estimates,
                             overlap=pd.DataFrame(overlap).set_index(["landmark", "group"]),
                             balance=pd.DataFrame(balance).set_index(["landmark", "covariate"]), propensity=propensity,
                             curves=pd.concat(curves, ignore_index=True), unweighted=results[("pooled", False)],
                             weighted=results[("pooled", True)], evalue=ev_res, trim=trim, alpha=alpha, method="aggregated")


def fit_landmark_ipw(episodes, risk_sets, users, *, landmarks, covariates, bin_days: float = 7, trim: float = 0.0,
                     max_episodes: int | None = DEFAULT_MAX_EPISODES, rare_outcome: bool | None = None,
                     alpha: float = 0.05, n_episodes: int | None = None) -> LandmarkIPWResult:
    """Landmark analysis with inverse probability weighting: the exact path
    (``landmark_data`` on the episodes, then :func:`landmark_ipw` with
    weighted Cox models) when there are at most ``max_episodes`` episodes,
    otherwise :func:`landmark_ipw_aggregated` on ``risk_sets`` and ``users``
    (``workbench.tables.landmark_risk_sets`` / ``landmark_users`` with the
    same ``landmarks``, ``covariates`` and ``bin_days``). The result's
    ``method`` and ``path_reason`` say which ran and why."""
    where = "fit_landmark_ipw"
    path, reason, _ = choose_path(episodes, max_episodes, where,
                                  "weighted piecewise-exponential models on aggregated landmark risk sets", n_episodes)
    if path == "exact":
        lm = landmark_data(to_pandas(episodes, where), landmarks=landmarks)
        res = landmark_ipw(lm, covariates=covariates, trim=trim, rare_outcome=rare_outcome, alpha=alpha)
    else:
        res = landmark_ipw_aggregated(risk_sets, users, covariates=covariates, bin_days=bin_days, trim=trim,
                                      rare_outcome=rare_outcome, alpha=alpha)
    return replace(res, path_reason=reason)


__all__ = ["fit_landmark_ipw", "landmark_ipw_aggregated"]
