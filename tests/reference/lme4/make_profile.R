# lme4's profile-likelihood intervals for the SDs (and correlations) of random effects.
# Run from this folder: Rscript make_profile.R  (R 4.2.2, lme4 1.1-31 from Debian's r-cran-lme4)
suppressMessages(library(lme4))
radon <- read.csv("../../../data/radon_mn.csv", colClasses = c(county = "character"))
pl <- read.csv("plates.csv", colClasses = c(plate = "character", sample = "character"))
cc <- read.csv("crossed_correlated.csv", colClasses = c(subject = "character", item = "character"))
ns <- read.csv("nested.csv", colClasses = c(school = "character", class = "character"))
specs <- list(
  varying_intercept = list(f = log_radon ~ floor + (1 | county), d = radon),
  varying_intercept_slope = list(f = log_radon ~ floor + (1 + floor | county), d = radon),
  uncorrelated_intercept_slope = list(f = log_radon ~ floor + (1 + floor || county), d = radon),
  plates = list(f = diameter ~ 1 + (1 | plate) + (1 | sample), d = pl),
  crossed_correlated = list(f = y ~ x + (1 + x | subject) + (1 + x | item), d = cc),
  nested_intercepts = list(f = y ~ x + (1 | school/class), d = ns)
)
out <- list()
for (n in names(specs)) for (reml in c(TRUE, FALSE)) {
  m <- lmer(specs[[n]]$f, data = specs[[n]]$d, REML = reml)
  ci <- suppressWarnings(confint(m, method = "profile", level = 0.95, oldNames = FALSE, parm = "theta_"))
  out[[length(out) + 1]] <- data.frame(model = n, method = ifelse(reml, "REML", "ML"), parameter = rownames(ci),
                                       low = ci[, 1], high = ci[, 2], row.names = NULL)
}
write.csv(do.call(rbind, out), "profile_intervals.csv", row.names = FALSE)
print(packageVersion("lme4"))
