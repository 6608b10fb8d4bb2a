/** The hub's sign-in page. */
export const LOGIN_PATH = "/login";

/**
 * What the page does when the hub answers 401 (no session, or the token it
 * was signed in with was taken out of the hub's token file): go to the
 * sign-in page, which comes back to /system.
 */
export function goToLogin(): void {
  window.location.assign(LOGIN_PATH);
}
