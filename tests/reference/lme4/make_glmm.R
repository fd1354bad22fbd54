# lme4 reference values for GLMMs fitted by glmer (data from make_glmm_data.py).
# Run from this folder: Rscript make_glmm.R  (R 4.2.2, lme4 1.1-31 from Debian's r-cran-lme4)
suppressMessages(library(lme4))
herds <- read.csv("herds.csv", colClasses = c(herd = "character", period = "character"))
counts <- read.csv("counts.csv", colClasses = c(site = "character", year = "character"))
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
  small_clusters = list(f = y ~ x + (1 | cluster), d = sc, fam = binomial, agq = TRUE)
)
fe <- list(); vc <- list(); re <- list(); ll <- list()
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
}
write.csv(do.call(rbind, fe), "glmm_fixed_effects.csv", row.names = FALSE)
write.csv(do.call(rbind, vc), "glmm_variance_components.csv", row.names = FALSE)
write.csv(do.call(rbind, re), "glmm_random_effects.csv", row.names = FALSE)
write.csv(do.call(rbind, ll), "glmm_fit_stats.csv", row.names = FALSE)
print(packageVersion("lme4"))
