export function NotFound({ what = "page" }: { what?: string }) {
  return (
    <section>
      <h1>Not found</h1>
      <p>This {what} does not exist, or it is not in the active tenant.</p>
      <p>
        <a href="/">Back to the dashboard</a>
      </p>
    </section>
  );
}
