# lme4 reference values for GLMMs fitted by glmer (data from make_glmm_data.py).
# Run from this folder: Rscript make_glmm.R  (R 4.2.2, lme4 1.1-31 from Debian's r-cran-lme4)
suppressMessages(library(lme4))
herds <- read.csv("herds.csv", colClasses = c(herd = "character", period = "character"))
counts <- read.csv("counts.csv", colClasses = c(site = "character", year = "character"))
counts$obs <- sprintf("o%03d", seq_len(nrow(counts)))  # an observation-level factor, for overdispersion
bc <- read.csv("binary_crossed.csv", colClasses = c(subject = "character", item = "character"))
sc <- read.csv("small_clusters.csv", colClasses = c(cluster = "character"))
specs <- list(
  herds = list(f = cbind(incidence, size - incidence) ~ period + (1 | herd), d = herds, fam = binomial,
               agq = TRUE),
  counts = list(f = count ~ x + (1 | site) + (1 | year) + offset(log(exposure)), d = counts, fam = poisson,
                agq = FALSE),
  count_slopes = list(f = count ~ x + (1 + x | site) + (1 | year) + offset(log(exposure)), d = counts,
                      fam = poisson, agq = FALSE),
  binary_crossed = list(f = y ~ x + (1 | subject) + (1 | item), d = bc, fam = binomial, agq = FALSE),
  small_clusters = list(f = y ~ x + (1 | cluster), d = sc, fam = binomial, agq = TRUE),
  counts_obs = list(f = count ~ x + (1 | site) + (1 | year) + (1 | obs) + offset(log(exposure)), d = counts,
                    fam = poisson, agq = FALSE)
)
fe <- list(); vc <- list(); re <- list(); ll <- list(); fv <- list()
for (n in names(specs)) for (nagq in if (specs[[n]]$agq) c(1L, 25L) else 1L) {
  s <- specs[[n]]
  msgs <- character(0)
  m <- withCallingHandlers(glmer(s$f, data = s$d, family = s$fam, nAGQ = nagq),
                           warning = function(w) { msgs <<- c(msgs, conditionMessage(w)); invokeRestart("muffleWarning") })
  meth <- if (nagq == 1L) "Laplace" else paste0("nAGQ", nagq)
  # standard errors free of the noise in glmer's own: lme4's deriv12 at glmer's optimum, on glmer's deviance
  # function with PIRLS converged to 1e-15 (or the tightest of 1e-14, 1e-13 its step halving allows), step
  # 1e-3 (glmer's step 1e-4 on a deviance converged to 1e-7 moves them by up to ~1%; at 1e-15, steps 1e-2
  # to 1e-4 agree to ~1e-5)
  nth <- length(getME(m, "theta"))
  for (tol in c(1e-15, 1e-14, 1e-13)) {
    hess <- tryCatch({
      dev <- glmer(s$f, data = s$d, family = s$fam, nAGQ = nagq, devFunOnly = TRUE,
                   control = glmerControl(tolPwrss = tol))
      lme4:::deriv12(dev, c(getME(m, "theta"), fixef(m)), delta = 1e-3)$Hessian
    }, error = function(e) NULL)
    if (!is.null(hess)) break
  }
  cf <- summary(m)$coefficients
  fe[[length(fe) + 1]] <- data.frame(model = n, method = meth, term = rownames(cf), estimate = cf[, 1],
                                     std_error = cf[, 2],
                                     std_error_rx = sqrt(diag(as.matrix(suppressWarnings(vcov(m, use.hessian = FALSE))))),
                                     std_error_tight = sqrt(diag(2 * solve(hess)))[-seq_len(nth)], tight_tol = tol,
                                     row.names = NULL)
  v <- as.data.frame(VarCorr(m)); v$model <- n; v$method <- meth; vc[[length(vc) + 1]] <- v
  r <- as.data.frame(ranef(m, condVar = TRUE)); r$model <- n; r$method <- meth; re[[length(re) + 1]] <- r
  ll[[length(ll) + 1]] <- data.frame(model = n, method = meth, logLik = as.numeric(logLik(m)),
                                     AIC = AIC(m), BIC = BIC(m), deviance = deviance(m), nobs = nobs(m),
                                     df = attr(logLik(m), "df"), singular = isSingular(m),
                                     pearson_ratio = sum(residuals(m, type = "pearson")^2) / df.residual(m),
                                     theta = paste(sprintf("%.15g", getME(m, "theta")), collapse = " "),
                                     warnings = paste(msgs, collapse = " | "))
  fv[[length(fv) + 1]] <- data.frame(model = n, method = meth, row = seq_along(fitted(m)), fitted = signif(fitted(m), 10))
}
write.csv(do.call(rbind, fe), "glmm_fixed_effects.csv", row.names = FALSE)
write.csv(do.call(rbind, vc), "glmm_variance_components.csv", row.names = FALSE)
write.csv(do.call(rbind, re), "glmm_random_effects.csv", row.names = FALSE)
write.csv(do.call(rbind, ll), "glmm_fit_stats.csv", row.names = FALSE)

# glm() without random terms, for compare_kit's GLM path (statsmodels)
glms <- list(
  herds_glm = list(f = cbind(incidence, size - incidence) ~ period, d = herds, fam = binomial),
  counts_glm = list(f = count ~ x + offset(log(exposure)), d = counts, fam = poisson),
  binary_glm = list(f = y ~ x, d = bc, fam = binomial)
)
gfe <- list(); gll <- list()
for (n in names(glms)) {
  s <- glms[[n]]
  m <- glm(s$f, data = s$d, family = s$fam)
  cf <- summary(m)$coefficients
  ci <- confint.default(m)
  gfe[[length(gfe) + 1]] <- data.frame(model = n, term = rownames(cf), estimate = cf[, 1], std_error = cf[, 2],
                                       conf_low = ci[, 1], conf_high = ci[, 2], row.names = NULL)
  gll[[length(gll) + 1]] <- data.frame(model = n, logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
                                       nobs = nobs(m), df = attr(logLik(m), "df"),
                                       pearson_ratio = sum(residuals(m, type = "pearson")^2) / df.residual(m))
  fv[[length(fv) + 1]] <- data.frame(model = n, method = "glm", row = seq_along(fitted(m)), fitted = signif(fitted(m), 10))
}
write.csv(do.call(rbind, gfe), "glm_fixed_effects.csv", row.names = FALSE)
write.csv(do.call(rbind, gll), "glm_fit_stats.csv", row.names = FALSE)
write.csv(do.call(rbind, fv), "glmm_fitted.csv", row.names = FALSE)

# predictions for new rows on the response scale: seen and unseen levels, the offset from the new exposures
new_rows <- list(
  herds = data.frame(herd = c("h01", "h07", "h99"), period = c("1", "3", "2")),
  counts = data.frame(site = c("s01", "s05", "s99"), year = c("2001", "2004", "2099"), x = c(0.5, -1, 0.2),
                      exposure = c(1, 2.5, 0.5))
)
pr <- list()
for (n in names(new_rows)) {
  s <- specs[[n]]
  m <- glmer(s$f, data = s$d, family = s$fam)
  nd <- new_rows[[n]]
  pr[[length(pr) + 1]] <- data.frame(model = n, row = seq_len(nrow(nd)), group_effects = TRUE,
                                     predicted = predict(m, nd, type = "response", allow.new.levels = TRUE))
  pr[[length(pr) + 1]] <- data.frame(model = n, row = seq_len(nrow(nd)), group_effects = FALSE,
                                     predicted = predict(m, nd, type = "response", re.form = NA))
}
write.csv(do.call(rbind, pr), "glmm_predictions.csv", row.names = FALSE)
print(packageVersion("lme4"))
