// Maître's service worker: it only shows the waiter's page's notifications (Chrome on Android shows none any other
// way). A tap on one brings the page back.
onnotificationclick = (event) => {
  event.notification.close();
  event.waitUntil(clients.matchAll({type: "window", includeUncontrolled: true})
    .then((pages) => pages[0] ? pages[0].focus() : clients.openWindow("/admin/waiter")));
};
