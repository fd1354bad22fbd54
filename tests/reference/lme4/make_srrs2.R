# lme4 reference values for the radon survey in all states but the R5 region (11,843 homes, 7 states,
# 439 counties), on the table written by make_srrs2_data.py (not committed: it holds srrs2.dat's rows).
# Run from this folder: Rscript make_srrs2.R PATH_TO_srrs2_no_r5.csv  (R 4.2.2, lme4 1.1-31, Debian)
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript make_srrs2.R PATH_TO_srrs2_no_r5.csv")
d <- read.csv(args[1], colClasses = c(state = "character", county = "character"))
stopifnot(nrow(d) == 11843)
specs <- list(
  srrs2_basement = log_radon ~ basement + (1 | state/county),
  srrs2_uranium = log_radon ~ basement + log_uranium + (1 | state/county)
)
fe <- list(); vc <- list(); re <- list(); ll <- list()
for (n in names(specs)) for (reml in c(TRUE, FALSE)) {
  # na.omit (lmer's default): homes without a recorded floor, or in a county without uranium, are left out
  m <- lmer(specs[[n]], data = d, REML = reml)
  meth <- ifelse(reml, "REML", "ML")
  cf <- summary(m)$coefficients
  fe[[length(fe) + 1]] <- data.frame(model = n, method = meth, term = rownames(cf), estimate = cf[, 1],
                                     std_error = cf[, 2], row.names = NULL)
  v <- as.data.frame(VarCorr(m)); v$model <- n; v$method <- meth; vc[[length(vc) + 1]] <- v
  r <- as.data.frame(ranef(m, condVar = TRUE)); r$model <- n; r$method <- meth; re[[length(re) + 1]] <- r
  ll[[length(ll) + 1]] <- data.frame(model = n, method = meth, logLik = as.numeric(logLik(m)),
                                     AIC = AIC(m), BIC = BIC(m), nobs = nobs(m), singular = isSingular(m))
}
write.csv(do.call(rbind, fe), "srrs2_fixed_effects.csv", row.names = FALSE)
write.csv(do.call(rbind, vc), "srrs2_variance_components.csv", row.names = FALSE)
write.csv(do.call(rbind, re), "srrs2_random_effects.csv", row.names = FALSE)
write.csv(do.call(rbind, ll), "srrs2_fit_stats.csv", row.names = FALSE)
print(packageVersion("lme4"))
